"""Follow-ups: SMS, WhatsApp and email to scored leads, without contact data outside the vault.

The worker (`leadops followups run`) reads due follow-ups from a Redis stream, takes an
idempotency claim per (tenant, lead, step), renders the template in a sandbox and sends
through the channel's ordered providers. The webhooks app (`leadops.followups.webhooks`)
records signed delivery callbacks and feeds STOP, unsubscribes, spam reports and bounces
into the suppression list. docs/followups.md is the user's page.
"""
