"""Webhook delivery's building blocks: signing, target checks, retry schedule, HTTP transport."""
