"""The challenge/voicemail user agent (pjsua2, its own process). Speaks SIP and HTTP only.

Contract with the proxy (the divert)
------------------------------------
When the policy says "challenge" or "voicemail", the proxy retargets the INVITE to::

    sip:challenge@<[challenge] listen>;sw-callee=<callee>;sw-decision=<id>;sw-mode=<mode>
        [;sw-vm=0|1][;sw-caller=<caller>]

for example ``sip:challenge@127.0.0.1:5070;sw-callee=%2B15551234567;sw-decision=8f3a;
sw-mode=challenge;sw-vm=1`` (one line).

- ``sw-callee`` (required): the original callee, E.164 digits, ``+`` percent-encoded
  (``%2B15551234567``) or omitted.
- ``sw-decision`` (required): the proxy's decision id (token characters, at most 128),
  echoed in every outcome report so the main process can join it to the call's score.
- ``sw-mode`` (required): ``challenge`` (press-the-code IVR, then bridge) or ``voicemail``.
- ``sw-vm`` (optional): ``1`` offers voicemail after a failed challenge or an unreachable
  callee, ``0`` does not; absent: ``[challenge] voicemail_on_fail``.
- ``sw-caller`` (optional): the caller number the proxy screened; absent: the user part
  of P-Asserted-Identity, else of From.

The proxy strips every ``sw-*`` Request-URI parameter arriving from outside, so they
cannot be forged. :mod:`challenge.divert` parses and formats this form.

After a pass, the UA calls ``sip:<callee>@<callee_domain>`` through ``outbound_proxy``
with ``X-Spitwall-Pass: <token>`` (:mod:`challenge.passtoken`: ``PassVerifier.check``).
Outcomes go to the main process as JSON POSTs (:mod:`challenge.outcome`).
"""
