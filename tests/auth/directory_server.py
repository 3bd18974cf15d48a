"""A throw-away OpenLDAP directory: Debian's slapd on a loopback port, loaded with slapadd from an LDIF, started and
stopped by its PID (tests/system/processes.Managed)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.system.processes import Managed, free_port

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "directory-root-secret"
GROUPS = f"ou=groups,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
{tls}
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {dir}/data
"""


def person(uid: str, password: str, given: str, surname: str) -> str:
    return (
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {surname}\n"
        f"givenName: {given}\nsn: {surname}\nmail: {uid}@example.org\nuserPassword: {password}\n\n"
    )


def group(cn: str, *members: str) -> str:
    lines = "".join(f"member: uid={uid},{PEOPLE}\n" for uid in members)
    return f"dn: cn={cn},{GROUPS}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}\n"


@dataclass
class Directory:
    uri: str
    root: Path

    def modify(self, ldif: str) -> None:
        """Change the running directory as its administrator (ldapmodify)."""
        done = subprocess.run(
            ["ldapmodify", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(),
            capture_output=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr.decode()


@contextmanager
def directory(root: Path, ldif: str, tls: str = "") -> Iterator[Directory]:
    """slapd serving `ldif` (below the base entries) on 127.0.0.1; `tls` adds TLS lines to its configuration."""
    (root / "data").mkdir(parents=True)
    config = root / "slapd.conf"
    config.write_text(CONFIG.format(dir=root, suffix=SUFFIX, root_dn=ROOT_DN, root_password=ROOT_PASSWORD, tls=tls))
    base = (
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n"
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
    )
    (root / "data.ldif").write_text(base + ldif)
    subprocess.run([SLAPADD, "-f", str(config), "-l", str(root / "data.ldif")], check=True, capture_output=True)
    port = free_port()
    uri = f"ldap://127.0.0.1:{port}"
    # -d 0: in the foreground (so the PID is slapd's own) and quiet.
    server = Managed([str(SLAPD), "-d", "0", "-f", str(config), "-h", f"{uri}/"], log=root / "slapd.log")
    server.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run(
                ["ldapsearch", "-x", "-H", uri, "-b", SUFFIX, "-s", "base", "-LLL", "dn"], capture_output=True
            )
            if probe.returncode == 0:
                break
            assert server.process is not None
            assert server.process.poll() is None, (root / "slapd.log").read_text()
            assert time.monotonic() < deadline, f"slapd did not answer: {probe.stderr.decode()}"
            time.sleep(0.2)
        yield Directory(uri=uri, root=root)
    finally:
        server.close()


def certificates(root: Path) -> tuple[Path, str]:
    """A throw-away CA and a certificate for 127.0.0.1 signed by it (openssl); returns the CA file and slapd's
    TLS configuration lines."""
    root.mkdir(parents=True, exist_ok=True)
    ca, ca_key, cert, key = (root / name for name in ("ca.pem", "ca.key", "server.pem", "server.key"))
    run = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test directory CA",
         "-keyout", str(ca_key), "-out", str(ca)],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(root / "server.csr")],
    ]  # fmt: skip
    for command in run:
        subprocess.run(command, check=True, capture_output=True)
    (root / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(root / "server.csr"), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(root / "ext.cnf"), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = f"TLSCACertificateFile {ca}\nTLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
    return ca, tls
