"""TOTP codes from pyotp (an implementation independent of ours), for the
Rust test `codes_match_pyotp`: `check.py SECRET_BASE32 T1 T2 ...` prints
one 6-digit code per Unix time T, one a line."""
import sys

import pyotp

totp = pyotp.TOTP(sys.argv[1])  # SHA-1, 6 digits, 30 s: RFC 6238's defaults
for t in sys.argv[2:]:
    print(totp.at(int(t)))
