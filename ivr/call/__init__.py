"""The call: the flow, understanding what was said, the next step, TwiML, the voice webhooks."""
