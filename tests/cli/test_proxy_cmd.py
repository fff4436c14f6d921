"""``vac cernvm-signature FILE`` (SPEC §8.1) through the CLI entry point."""

from __future__ import annotations

from tests.adapters.pki import make_pki, signed_image
from vac.cli import main


def test_cernvm_signature_prints_the_result(tmp_path, capsys):
    pki = make_pki(str(tmp_path / "etc" / "grid-security"))
    image = signed_image(str(tmp_path / "cernvm.iso"), pki.signer_key, pki.signer_cert)
    assert main(["--root", str(tmp_path), "cernvm-signature", image]) == 0
    out = capsys.readouterr().out.strip()
    assert out == ("{'verified': True, 'dn': '/DC=ch/DC=cern/OU=computers/"
                   "CN=cvm-sign01.cern.ch', 'version': '2.7.7'}")
    bad = signed_image(str(tmp_path / "bad.iso"), pki.signer_key, pki.signer_cert, tamper=True)
    assert main(["--root", str(tmp_path), "cernvm-signature", bad]) == 0
    assert capsys.readouterr().out.startswith("{'verified': False")


def test_cernvm_signature_needs_a_file(capsys):
    assert main(["cernvm-signature"]) == 2
    assert "cernvm-signature command requires the filename argument!" in \
        capsys.readouterr().err
