"""The protocol module: what server and client must agree on, defined once.

:mod:`~segserve_client.protocol.wire` (the safetensors body and the
epoch-stream frames), :mod:`~segserve_client.protocol.constants` (VOC facts,
normalisation statistics, tensor names) and
:mod:`~segserve_client.protocol.normalize` (the chapter's normalisation).
A leaf: it imports numpy and the standard library only, nothing else of the
project, so the server (``service``, ``app``) imports it from here and the two
sides cannot drift.
"""
