"""The Asterisk configuration the engine needs, as text an operator pastes (``ivr asterisk
dialplan`` prints it with the configured addresses; docs/asterisk.md shows the defaults).

Inbound: answer (``AudioSocket()`` refuses a channel that is not up), give the call a UUID in
``IVR_UUID`` (its ``VarSet`` event tells the engine the channel, caller ID and dialled number),
hand the audio to the engine, and hang up when the engine is done. When the engine cannot be
reached, ``AudioSocket`` fails and the dialplan goes on: the ``Hangup`` here, or whatever
fallback the operator puts in its place. ``IVR_CALLEE`` overrides the dialled number the flow
is picked by (``${EXTEN}`` is used otherwise).
"""

from __future__ import annotations

INBOUND_TEMPLATE = """\
; extensions.conf: calls to these numbers are answered by the IVR engine
[{inbound_context}]
exten => _X.,1,NoOp(IVR engine: ${{EXTEN}} from ${{CALLERID(num)}})
 same => n,Answer()
 same => n,Set(IVR_CALLEE=${{EXTEN}})
 same => n,Set(IVR_UUID=${{UUID()}})
 same => n,AudioSocket(${{IVR_UUID}},{audiosocket})
 same => n,Hangup()

; transfers from a flow: the channel is redirected here with the flow's target in
; IVR_TRANSFER_TARGET and its user part as the extension
[{transfer_context}]
exten => _X.,1,Dial(PJSIP/${{EXTEN}},30)
 same => n,Hangup()
exten => _[a-z].,1,Dial(PJSIP/${{EXTEN}},30)
 same => n,Hangup()
"""

OUTBOUND_TEMPLATE = """\
; answered outbound calls (only when [asterisk].outbound_context is set)
[{outbound_context}]
exten => s,1,AudioSocket(${{IVR_UUID}},${{IVR_AUDIOSOCKET}})
 same => n,Hangup()
"""

MANAGER_TEMPLATE = """\
; manager.conf: the engine's AMI user
[general]
enabled = yes
port = {ami_port}
bindaddr = {ami_host}

[{username}]
secret = <the secret in [asterisk].secret>
deny = 0.0.0.0/0.0.0.0
permit = {engine_host}/255.255.255.255
; read: channel events (call), VarSet (dialplan), Shutdown/FullyBooted (system)
read = call,dialplan,system
; write: Hangup/Redirect/Setvar/PlayDTMF (call), Originate (originate), Filter (system)
write = call,originate,system
; ms a burst of events may wait for the engine before Asterisk drops the session (default 100)
writetimeout = 1000
"""


def dialplan_snippet(*, audiosocket: str, inbound_context: str = "ivr-inbound",
                     transfer_context: str = "ivr-transfer",
                     outbound_context: str | None = None) -> str:
    text = INBOUND_TEMPLATE.format(inbound_context=inbound_context,
                                   transfer_context=transfer_context, audiosocket=audiosocket)
    if outbound_context:
        text += "\n" + OUTBOUND_TEMPLATE.format(outbound_context=outbound_context)
    return text


def manager_snippet(*, username: str, ami_host: str, ami_port: int, engine_host: str) -> str:
    return MANAGER_TEMPLATE.format(username=username, ami_host=ami_host, ami_port=ami_port,
                                   engine_host=engine_host)
