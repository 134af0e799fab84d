"""A client generated from Rempart's OpenAPI document drives the API, as an integrator's would.

Usage: generated_client.py OPENAPI_JSON BASE_URL ANALYST_TOKEN APPROVER_TOKEN AUDITOR_TOKEN

Generates a Python client with openapi-python-client (the generator's own command, unmodified),
then with it: lists the incidents, approves the first pending approval, and reads the ledger
record of that decision. Prints what it did as one JSON object; fails (non-zero) on anything
else.
"""

import importlib
import json
import os
import subprocess
import sys
import tempfile


def main() -> None:
    document, base_url, analyst, approver, auditor = sys.argv[1:6]
    out = tempfile.mkdtemp(prefix="rempart-client-")
    generator = os.path.join(os.path.dirname(sys.executable), "openapi-python-client")
    package = os.path.join(out, "rempart_client")
    subprocess.run(
        [generator, "generate", "--path", document, "--output-path", package, "--meta", "none"],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, out)
    client_mod = importlib.import_module("rempart_client.client")
    list_incidents = importlib.import_module("rempart_client.api.incidents.list_incidents")
    list_approvals = importlib.import_module("rempart_client.api.response.list_approvals")
    approve = importlib.import_module("rempart_client.api.response.approve")
    list_records = importlib.import_module("rempart_client.api.audit.list_records")
    approve_body = importlib.import_module("rempart_client.models.approve_body")

    def client(token: str):
        return client_mod.AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)

    # The incidents, as typed models.
    listed = list_incidents.sync_detailed(client=client(analyst))
    assert listed.status_code == 200, listed
    incidents = listed.parsed.incidents
    assert incidents, "the demo holds an incident"
    incident = incidents[0]

    # The same incidents a page of one at a time, following each answer's `next` cursor.
    paged, cursor = [], None
    while True:
        kwargs = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        page = list_incidents.sync_detailed(client=client(analyst), **kwargs)
        assert page.status_code == 200, page
        paged += [i.id for i in page.parsed.incidents]
        cursor = page.parsed.to_dict().get("next")
        if cursor is None:
            break
        assert len(paged) <= len(incidents), "the pages do not end"
    assert paged == [i.id for i in incidents], (paged, [i.id for i in incidents])

    # The first pending approval, approved by an approver (not the person who asked).
    pending = list_approvals.sync_detailed(client=client(approver))
    assert pending.status_code == 200, pending
    approvals = pending.parsed.approvals
    assert approvals, "the demo leaves an approval pending"
    first = approvals[0]
    decided = approve.sync_detailed(
        first.id, client=client(approver), body=approve_body.ApproveBody(comment="isolate: confirmed by the generated client")
    )
    assert decided.status_code == 200, (decided.status_code, decided.content)

    # The ledger holds the decision, read by an auditor page by page.
    decisions = []
    start = 0
    while start is not None:
        page = list_records.sync_detailed(client=client(auditor), from_=start, limit=1000)
        assert page.status_code == 200, page
        records = page.parsed.records
        decisions += [
            r for r in records if r.kind == "approval.decision" and str(first.id) in json.dumps(r.to_dict())
        ]
        start = page.parsed.to_dict().get("next")
    assert decisions, "the approval's decision is in the ledger"

    print(
        json.dumps(
            {
                "incidents": len(incidents),
                "incident": str(incident.id),
                "approved": str(first.id),
                "decision_seq": decisions[0].seq,
            }
        )
    )


if __name__ == "__main__":
    main()
