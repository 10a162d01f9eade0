"""A small OpenID provider for the Flask-level tests: real HTTP on 127.0.0.1, tokens we sign ourselves.

It serves discovery, its JWKS and a token endpoint that checks the client's secret, the code, the
redirect URI and the PKCE verifier, then hands back an ID token with the claims the test chose
(or signed by another key, to play an attacker).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class FakeProvider:
    def __init__(self, client_id: str = "lanyard-test", client_secret: str = "s3cret-for-tests") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "current", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict] = {}
        self.token_requests = 0
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # What the browser would do at the provider: sign in and come back with a code.
    def authorise(
        self, authorisation_url: str, claims: dict | None = None, *, sign_with: RSAKey | None = None, raw_token: str | None = None
    ) -> dict:
        """Accept the sign-in the app asked for; return the query the provider would send back."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorisation_url).query).items()}
        assert query["client_id"] == self.client_id and query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256" and set(query["scope"].split()) == {"openid", "email", "profile"}
        code = secrets.token_urlsafe(16)
        now = int(time.time())
        token_claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": query["nonce"],
            **(claims or {}),
        }
        self.codes[code] = {
            "claims": {k: v for k, v in token_claims.items() if v is not None},
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
            "key": sign_with,
            "raw": raw_token,
        }
        return {"code": code, "state": query["state"]}

    def sign(self, claims: dict, key: RSAKey | None = None) -> str:
        key = key or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid or "current"}, claims, key)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path == "/.well-known/openid-configuration":
            body = {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        elif request.path == "/jwks":
            body = KeySet([self.key]).as_dict(private=False)
        elif request.path == "/token" and request.method == "POST":
            return self._token(request)(environ, start_response)
        else:
            return Response("not found", 404)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    def _token(self, request: Request) -> Response:
        self.token_requests += 1
        auth = request.authorization
        client = (auth.username, auth.password) if auth else (request.form.get("client_id"), request.form.get("client_secret"))
        if client != (self.client_id, self.client_secret):
            return Response(json.dumps({"error": "invalid_client"}), 401, mimetype="application/json")
        grant = self.codes.pop(request.form.get("code", ""), None)
        verifier = request.form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant["challenge"] != challenge or grant["redirect_uri"] != request.form.get("redirect_uri"):
            return Response(json.dumps({"error": "invalid_grant"}), 400, mimetype="application/json")
        id_token = grant["raw"] or self.sign(grant["claims"], grant["key"])
        body = {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        return Response(json.dumps(body), mimetype="application/json")
