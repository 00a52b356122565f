"""When the control feed may have lost commands, a node closes what an erasure revoked anyway."""

from __future__ import annotations

import time

from tests.conftest import RunningServer


async def test_a_control_gap_closes_the_connections_of_erased_users_only(
    server: RunningServer,
) -> None:
    erased = await server.member("u1", "student", name="Sam Student")
    other = await server.member("u2", "student", name="Kim Student")
    classroom = server.app.state.classroom
    # An erasure elsewhere whose command this node never got: only its revocation record.
    await classroom.records.revoke_tokens("acme", "u1", time.time() + 1)
    classroom.node.control.on_gap()
    frame = await erased.expect("disconnect")
    assert frame == {"type": "disconnect", "code": 4403, "reason": "your data was erased",
                     "reconnect": False}
    assert await erased.closed_code() == 4403
    assert not [f for f in await other.quiet(0.3) if f.get("type") == "disconnect"]
    assert (await other.request("ping"))["type"] == "pong"
