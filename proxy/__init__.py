"""The SIP proxy: sans-IO SIP core (`proxy.sip`, `proxy.transaction`), the RFC 3261 §16
proxy rules (`proxy.core`), thin asyncio transports and the call-screening step."""
