#!/usr/bin/env python3
"""Enroll once against a SCEP server with PyScep 0.0.14 (an independent client).

Usage: pyscep_enroll.py URL CHALLENGE OUTDIR [--cn CN] [--key-size N]
       pyscep_enroll.py --check   (exit 0 if PyScep imports)

Writes OUTDIR/key.pem (PKCS#8) and OUTDIR/cert.pem (the issued certificate).
Exit 0 on SUCCESS, 2 on FAILURE (failInfo printed), 3 on PENDING, 1 on errors.
Install: see tests/interop/README.md (pinned pip set; oscrypto needs the shim below).
"""
import argparse
import logging
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore", message="TripleDES has been moved")

def _import_pyscep():
    # oscrypto 1.3.0 (last release) cannot parse "OpenSSL 3.0.19": its version regex
    # only takes one digit per component. Widen that regex while oscrypto loads.
    orig = re.search

    def search(pattern, string, *args, **kwargs):
        if pattern == "\\b(\\d\\.\\d\\.\\d[a-z]*)\\b":
            pattern = "\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b"
        return orig(pattern, string, *args, **kwargs)

    re.search = search
    try:
        import oscrypto.asymmetric  # noqa: F401  (triggers the libcrypto probe)
        from scep import Client
    finally:
        re.search = orig
    return Client


def main():
    if sys.argv[1:] == ["--check"]:
        _import_pyscep()
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("challenge")
    ap.add_argument("outdir")
    ap.add_argument("--cn", default="pyscep-client")
    ap.add_argument("--key-size", type=int, default=2048)
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    Client = _import_pyscep()

    client = Client.Client(args.url)
    caps = client.get_ca_capabilities()
    print("caps:", sorted(c.value for c in caps.caps), "cipher:", caps.strongest_cipher(),
          "digest:", caps.strongest_message_digest(), flush=True)
    identity, identity_key = Client.SigningRequest.generate_self_signed(
        cn="pyscep-signer", key_usage={"digital_signature", "key_encipherment"})
    key = Client.SigningRequest.generate_pair(size=args.key_size)
    csr, key = Client.SigningRequest.generate_csr(
        cn=args.cn, key_usage={"digital_signature"}, password=args.challenge, private_key=key)
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "key.pem"), "wb") as f:
        f.write(key.to_pem())

    res = client.enrol(csr=csr, identity=identity, identity_private_key=identity_key)
    if res.status == Client.PKIStatus.FAILURE:
        print("FAILURE failInfo=%s" % Client.FailInfo(res.fail_info).name, file=sys.stderr)
        return 2
    if res.status == Client.PKIStatus.PENDING:
        print("PENDING transactionID=%s" % res.transaction_id, file=sys.stderr)
        return 3
    want = key.public_key.to_der()
    mine = [c for c in res.certificates or [] if c.public_key.to_der() == want]
    if not mine:
        print("SUCCESS but no returned certificate matches our key (%d certs)"
              % len(res.certificates or []), file=sys.stderr)
        return 1
    with open(os.path.join(args.outdir, "cert.pem"), "wb") as f:
        f.write(mine[0].to_pem())
    print("issued:", mine[0].subject.human_friendly, "certs in reply:", len(res.certificates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
