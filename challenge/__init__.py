"""The challenge/voicemail user agent (pjsua2, its own process). Speaks SIP and HTTP only."""
