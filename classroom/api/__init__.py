"""The server API for tenants' back ends (section 8): ``/api/v1``, keyed per tenant."""
