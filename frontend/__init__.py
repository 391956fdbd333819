"""The pages: Django templates enhanced with htmx. Views stay thin; logic lives in services."""
