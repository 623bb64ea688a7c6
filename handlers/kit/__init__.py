"""What every audience's router shares: callback data, filters, keyboards, renderers.

Audience packages (resident, worker, coordinator, idp) import from here, never from each other."""
