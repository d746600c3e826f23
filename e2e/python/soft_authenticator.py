"""A software WebAuthn authenticator for the passkey tests, independent of the service's
WebAuthn library: Python's `fido2` builds the CBOR attestation object, authenticator data and
COSE key, `cryptography` makes the P-256 key and the ECDSA signatures.

One JSON request on stdin, one JSON answer on stdout:
- {"op": "create", "options": <publicKey of the creation options>, "origin": "...",
   "key"?: <a key from an earlier create, to register the same credential again>,
   "uv"?: bool, "type"?: str, "challenge"?: base64url, "rp_id"?: str,
   "credential_id_bytes"?: int}
  -> {"credential": RegistrationResponseJSON, "key": {...}}
- {"op": "get", "options": <publicKey of the request options>, "origin": "...", "key": {...},
   "counter"?: int, "uv"?: bool, "type"?: str, "challenge"?: base64url, "rp_id"?: str}
  -> {"credential": AuthenticationResponseJSON}
The optional members make the answers the tests need refused: no user verification, another
ceremony type, challenge, RP ID or origin.
"""

import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

FLAG = AuthenticatorData.FLAG


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def client_data(req: dict, default_type: str, options: dict) -> bytes:
    challenge = unb64(req.get("challenge") or options["challenge"])
    return bytes(
        CollectedClientData.create(req.get("type", default_type), challenge, req["origin"])
    )


def flags(req: dict, extra: int = 0) -> int:
    f = FLAG.UP | extra
    if req.get("uv", True):
        f |= FLAG.UV
    return f


def create(req: dict) -> dict:
    options = req["options"]
    rp_id = req.get("rp_id", options["rp"]["id"])
    if "key" in req:
        key = serialization.load_pem_private_key(req["key"]["pem"].encode(), None)
        cred_id = unb64(req["key"]["id"])
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        cred_id = os.urandom(req.get("credential_id_bytes", 32))
    attested = AttestedCredentialData.create(
        b"\0" * 16, cred_id, ES256.from_cryptography_key(key.public_key())
    )
    auth_data = AuthenticatorData.create(
        hashlib.sha256(rp_id.encode()).digest(), flags(req, FLAG.AT), 0, attested
    )
    attestation = AttestationObject.create("none", auth_data, {})
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "credential": {
            "id": b64(cred_id),
            "rawId": b64(cred_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data(req, "webauthn.create", options)),
                "attestationObject": b64(bytes(attestation)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        },
        "key": {"id": b64(cred_id), "pem": pem, "user": options["user"]["id"], "rp_id": rp_id},
    }


def get(req: dict) -> dict:
    options, key = req["options"], req["key"]
    rp_id = req.get("rp_id", options.get("rpId", key["rp_id"]))
    private = serialization.load_pem_private_key(key["pem"].encode(), None)
    auth_data = bytes(
        AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(), flags(req), req.get("counter", 0)
        )
    )
    cdata = client_data(req, "webauthn.get", options)
    signature = private.sign(
        auth_data + hashlib.sha256(cdata).digest(), ec.ECDSA(hashes.SHA256())
    )
    return {
        "credential": {
            "id": key["id"],
            "rawId": key["id"],
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(cdata),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": key["user"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
    }


def main() -> None:
    req = json.load(sys.stdin)
    answer = {"create": create, "get": get}[req["op"]](req)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
