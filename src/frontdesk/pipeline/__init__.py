"""The stages of one customer message, one module each, pure: typed input -> typed output.

privacy -> context -> understand -> decide -> respond -> guard. Stages never write state; the
action layer (frontdesk.actions) stores, commits and then publishes.
"""
