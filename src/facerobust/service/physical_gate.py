"""A running gate as a judge of the physical-accessory study: the held-out captures (JPEG
bytes with the accessory worn) go to ``POST /verify`` over HTTP and the gate's own decisions
are counted (:class:`facerobust.eval.physical_study.DecisionOracle`)."""

from __future__ import annotations

from facerobust.service.blackbox import GateAccess
from facerobust.service.client import GateClient, GateLockedOut


class GateOracle:
    """Enroll targets with the admin key, verify captures with the client key. A lock-out
    stops the study with an error naming it (give the attacker's key room for the captures:
    every dodging success is a rejection)."""

    def __init__(self, gate: GateAccess) -> None:
        self.gate = gate
        self.client = GateClient(gate.url, gate.key, wait=True, max_wait_s=600.0)
        self.admin = GateClient(gate.url, gate.admin_key)

    def enroll(self, identity: str, photo: bytes) -> None:
        self.admin.enroll(identity, [photo], self.gate.admin_key, mode="replace")

    def accepts(self, photo: bytes, claimed: str) -> bool | None:
        try:
            answer = self.client.verify(photo, claimed, "image/jpeg")
        except GateLockedOut as err:
            raise OSError(f"the gate locked the attacker's key out ({err}); raise its "
                          "limits for this study") from None
        return answer.accepted if answer.status == 200 else None

    def close(self) -> None:
        self.client.close()
        self.admin.close()


__all__ = ["GateOracle"]
