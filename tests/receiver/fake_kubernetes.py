"""A fake API server for `rollout undo`: a Deployment, its ReplicaSets, and the controller's answer.

It follows the real interface: GET apps/v1 Deployment and ReplicaSets (labelSelector), PATCH with
`application/json-patch+json` (replace ops); after a patch it does what the Deployment controller
does on a rollback: the ReplicaSet with the same pod template becomes the newest revision.
"""

from __future__ import annotations

import copy
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from support import free_port

from tests.receiver.fakes import ServedInThread, answer

REVISION = "deployment.kubernetes.io/revision"


def template(image: str, pod_hash: str) -> dict:
    return {"metadata": {"labels": {"app": "tts", "pod-template-hash": pod_hash}},
            "spec": {"containers": [{"name": "inference", "image": image}]}}


class FakeDeploymentApi(ServedInThread):
    """One Deployment `tts/NAME` whose revisions run the given images (oldest first)."""

    def __init__(self, name: str, images: list[str], token: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.patches: list[tuple[str, list]] = []
        self.replicasets = [
            {"metadata": {"name": f"{name}-{i}", "labels": {"app": "tts"},
                          "annotations": {REVISION: str(i), "note": f"rev {i}"},
                          "ownerReferences": [{"kind": "Deployment", "name": name, "uid": "uid-1"}]},
             "spec": {"template": template(image, f"h{i}")}}
            for i, image in enumerate(images, start=1)
        ]
        # Another owner's ReplicaSet with the same labels and a tempting revision: never picked.
        self.replicasets.append({"metadata": {"name": "stranger", "labels": {"app": "tts"},
                                              "annotations": {REVISION: str(len(images) - 1)},
                                              "ownerReferences": [{"kind": "Deployment", "uid": "uid-other"}]},
                                 "spec": {"template": template("evil:latest", "hx")}})
        newest = copy.deepcopy(self.replicasets[len(images) - 1]["spec"]["template"])
        newest["metadata"]["labels"].pop("pod-template-hash")
        self.deployment = {"metadata": {"name": name, "uid": "uid-1", "annotations": {REVISION: str(len(images))}},
                           "spec": {"selector": {"matchLabels": {"app": "tts"}}, "template": newest}}
        api = self
        path = f"/apis/apps/v1/namespaces/tts/deployments/{name}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, body):
                answer(self, code, json.dumps(body).encode())

            def do_GET(self):
                url = urlparse(self.path)
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self._send(401, {"kind": "Status", "message": "Unauthorized"})
                if url.path == path:
                    return self._send(200, api.deployment)
                if url.path == "/apis/apps/v1/namespaces/tts/replicasets":
                    wanted = dict(p.split("=", 1) for p in parse_qs(url.query).get("labelSelector", [""])[0].split(",")
                                  if p)
                    items = [rs for rs in api.replicasets
                             if all(rs["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
                    return self._send(200, {"kind": "ReplicaSetList", "items": items})
                return self._send(404, {"kind": "Status", "message": "not found"})

            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self._send(401, {"kind": "Status", "message": "Unauthorized"})
                if self.path != path:
                    return self._send(404, {"kind": "Status", "message": "not found"})
                if self.headers.get("Content-Type") != "application/json-patch+json" or not isinstance(body, list):
                    return self._send(415, {"kind": "Status", "message": "unsupported patch type"})
                api.patches.append((self.path, body))
                for op in body:
                    m = re.fullmatch(r"/(spec|metadata)/(template|annotations)", op.get("path", ""))
                    if op.get("op") != "replace" or not m:
                        return self._send(422, {"kind": "Status", "message": f"bad op {op}"})
                    api.deployment[m.group(1)][m.group(2)] = copy.deepcopy(op["value"])
                api.controller()
                return self._send(200, api.deployment)

        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), Handler))

    def controller(self) -> None:
        """The owned ReplicaSet whose template matches becomes the newest revision."""
        owned = [rs for rs in self.replicasets if rs["metadata"]["ownerReferences"][0]["uid"] == "uid-1"]
        newest = max(int(rs["metadata"]["annotations"][REVISION]) for rs in owned)
        for rs in owned:
            tpl = copy.deepcopy(rs["spec"]["template"])
            tpl["metadata"]["labels"].pop("pod-template-hash", None)
            if tpl == self.deployment["spec"]["template"]:
                rs["metadata"]["annotations"][REVISION] = str(newest + 1)
                self.deployment["metadata"]["annotations"][REVISION] = str(newest + 1)

    def image(self) -> str:
        return self.deployment["spec"]["template"]["spec"]["containers"][0]["image"]
