"""HTTP blueprints. Handlers stay thin: parse, call a service, commit once, render."""
