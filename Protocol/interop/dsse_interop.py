#!/usr/bin/env python3
"""Signs and verifies Baton envelopes with securesystemslib, an independent DSSE implementation.

    dsse_interop.py sign MANIFEST_JSON PRIVATE_KEY_PEM OUT [MORE_PRIVATE_KEY_PEM ...] [--sslib-keyid]
    dsse_interop.py verify ENVELOPE PUBLIC_KEY_PEM [MORE_PUBLIC_KEY_PEM ...] [--threshold=N]

`sign` wraps the exact bytes of MANIFEST_JSON (no re-encoding) in a DSSE envelope of
payloadType application/vnd.baton.manifest.v1+json and signs it with each Ed25519
PKCS#8 key, using securesystemslib's Envelope and CryptoSigner. Each signature's keyid
is Baton's (lowercase hex SHA-256 of the raw 32-byte public key), or with --sslib-keyid
the keyid securesystemslib computes by default (which Baton treats as an unknown hint).

`verify` checks ENVELOPE with securesystemslib's Envelope.verify against the given SPKI
public keys (keyids computed Baton's way, because securesystemslib only tries the key a
signature's keyid names), requiring --threshold=N distinct keys (default 1).

Exit status: 0 signed / verified, 1 verification failed, 2 usage or input error,
3 a dependency is missing (pip install securesystemslib cryptography).
"""

import hashlib
import json
import sys

try:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import CryptoSigner, SSlibKey
except ImportError as missing:
    sys.stderr.write(f"dsse_interop.py: {missing}; pip install securesystemslib cryptography\n")
    sys.exit(3)

PAYLOAD_TYPE = "application/vnd.baton.manifest.v1+json"


def baton_keyid(public_key):
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sslib_key(public_key, sslib_keyid=False):
    return SSlibKey.from_crypto(public_key, keyid=None if sslib_keyid else baton_keyid(public_key))


def sign(manifest_path, key_paths, out_path, sslib_keyid):
    with open(manifest_path, "rb") as f:
        payload = f.read()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    for path in key_paths:
        with open(path, "rb") as f:
            private_key = serialization.load_pem_private_key(f.read(), password=None)
        signer = CryptoSigner(private_key, sslib_key(private_key.public_key(), sslib_keyid))
        signature = envelope.sign(signer)
        print(f"signed by keyid {signature.keyid}")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(envelope.to_dict(), f, indent=2)
        f.write("\n")
    return 0


def verify(envelope_path, key_paths, threshold):
    with open(envelope_path, "rb") as f:
        data = json.loads(f.read())
    envelope = Envelope.from_dict(data)
    keys = []
    for path in key_paths:
        with open(path, "rb") as f:
            keys.append(sslib_key(serialization.load_pem_public_key(f.read())))
    try:
        accepted = envelope.verify(keys, threshold)
    except VerificationError as error:
        print(f"not verified: {error}")
        return 1
    print(f"verified: payloadType {envelope.payload_type}, keyids {', '.join(sorted(accepted))}")
    return 0


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = [a for a in argv[1:] if a.startswith("--")]
    try:
        if len(args) >= 4 and args[0] == "sign" and set(flags) <= {"--sslib-keyid"}:
            return sign(args[1], [args[2]] + args[4:], args[3], "--sslib-keyid" in flags)
        if len(args) >= 3 and args[0] == "verify":
            threshold = 1
            for flag in flags:
                if not flag.startswith("--threshold="):
                    raise ValueError(f"unknown option {flag}")
                threshold = int(flag.split("=", 1)[1])
            return verify(args[1], args[2:], threshold)
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.stderr.write(f"dsse_interop.py: {type(error).__name__}: {error}\n")
        return 2
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
