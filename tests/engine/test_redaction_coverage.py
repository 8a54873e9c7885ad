"""Redaction coverage: every private key armour, the vendor formats of the well-known secret
scanners, labelled values, connection strings and natural-language password phrases; and
three properties (hypothesis, fixed example budget): a secret embedded in arbitrary text is
always removed, redaction is idempotent, ordinary prose and code are left as they are."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.escalation.redact import REDACTED, redact

PROPS = settings(derandomize=True, max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])

B64 = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"


def _armour(kind: str, body: str = B64) -> str:
    return f"-----BEGIN {kind}-----\n{body}\n{body[::-1]}\n-----END {kind}-----"


KEY_BLOCKS = [_armour(k) for k in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY",
                                   "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY", "PGP PRIVATE KEY BLOCK")]
KEY_BLOCKS.append("-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBF" + B64 + "\n=Xx1A\n"
                  "-----END PGP PRIVATE KEY BLOCK-----")
KEY_BLOCKS.append("PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 2\n" + B64 + "\n" + B64[::-1] + "\n")

# One example per vendor format (made-up values with the real shapes).
VENDOR_TOKENS = [
    "AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2, "gho_" + "Z" * 36, "ghs_" + "9" * 36,
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    "glpat-" + "x1y2z3" * 4, "glptt-" + "a" * 40,
    "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", "xoxp-11111111111-22222222222-abcdefabcdef",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "rk_live_" + "51Hq" * 6, "pk_live_" + "TYooMQauvdEDq54NiTphI7jx",
    "sk-" + "T3BlbkFJ" * 5, "sk-proj-" + "abcDEF123_-x" * 4, "sk-ant-api03-" + "Zq9" * 20,
    "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
    "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "SK" + "0123456789abcdef" * 2,  # Twilio API key
    "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",
    "npm_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "pypi-AgEIcHlwaS5vcmc" + "CJDk2NzVlZDMtNjQ0Zi00ZGQ4LWE1NmMtOTM0NGZmMzhhYjVm" + "QyMDIz",
    "abc8Q~" + "xYz0123456789abcdefghijklmnopqrs",  # Azure AD client secret
    "key-" + "0123456789abcdef" * 2, "0123456789abcdef0123456789abcdef-us12",
    "shpat_" + "0a1b2c3d" * 4, "dop_v1_" + "0a1b2c3d" * 8, "dapi" + "0123456789abcdef" * 2,
    "hvs." + "CAESIJx0A8ZyA1bCdEfGhIjKlMnOpQr", "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "ya29.a0AfH6SMBx" + "Q" * 30, "GOCSPX-" + "1a2B3c4D5e6F7g8H9i0J1k2L3m",
    "gsk_" + "Q" * 48, "r8_" + "Zx9" * 12, "xai-" + "A1" * 24, "pplx-" + "b2" * 24,
    "AGE-SECRET-KEY-1" + ("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" * 2)[:58],
]

# (text, secret): the secret needs its context (label, header, URL, sentence) to be one.
IN_CONTEXT = [
    ("Server=db;Database=app;User Id=sa;Password=Tr0ub4dor&3x;", "Tr0ub4dor"),
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==;EndpointSuffix=x",
     "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA=="),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=q1w2e3r4t5y6u7i8o9p0=",
     "q1w2e3r4t5y6u7i8o9p0="),
    ("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=AbCd%2FeFgH1234567890&se=2030", "AbCd%2FeFgH1234567890"),
    ("redis://:hunter2hunter2@cache:6379/0", "hunter2hunter2"),
    ("mongodb+srv://admin:Sup3rS3cret@cluster0.mongodb.net/db", "Sup3rS3cret"),
    ("Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef"),
    ("the root password is hunter2", "hunter2"),
    ("The root password is hunter2.", "hunter2"),
    ("my passphrase is 'correct horse battery staple'", "correct horse battery staple"),
    ("FYI the password for the staging db is now pl4typus!", "pl4typus"),
    ("the wifi password was: Kiwi-Banana-42", "Kiwi-Banana-42"),
    ("our API key is 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706"),
    ("password: x", None),  # a one-letter value still goes
    ("pwd=s3cr3t", "s3cr3t"),
    ("login with passwd = 'letmein99'", "letmein99"),
]


@pytest.mark.parametrize("block", KEY_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_every_private_key_armour_is_removed(block: str) -> None:
    out = redact(f"key follows\n{block}\nthanks")
    assert B64 not in out and B64[::-1] not in out and REDACTED in out
    assert out.startswith("key follows\n")


def test_an_unterminated_key_block_is_removed_to_the_end() -> None:
    out = redact("paste:\n-----BEGIN RSA PRIVATE KEY-----\n" + B64 + "\n" + B64)
    assert B64 not in out


@pytest.mark.parametrize("token", VENDOR_TOKENS)
def test_vendor_formats_are_removed_without_a_label(token: str) -> None:
    out = redact(f"use {token} for the deploy")
    assert token not in out and out == f"use {REDACTED} for the deploy"


@pytest.mark.parametrize("text, secret", IN_CONTEXT)
def test_secrets_in_context_are_removed(text: str, secret: str | None) -> None:
    out = redact(text)
    assert REDACTED in out
    if secret is not None:
        assert secret not in out, out
    else:
        assert out == f"password: {REDACTED}"


# ---- properties ----

_password_chars = st.sampled_from("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$%^&*_-+")
PASSWORDS = st.text(_password_chars, min_size=6, max_size=24).filter(
    lambda s: any(c.isdigit() for c in s) and s[-1].isalnum())
PHRASES = st.sampled_from(["the root password is {}", "my password is {}", "password: {}", "pwd={}",
                           "the passphrase was {}", "DB_PASSWORD={}", "our API key is {}",
                           "the password for admin is {}", "client_secret = \"{}\""])
SURROUNDING = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)


@PROPS
@given(prefix=SURROUNDING, suffix=SURROUNDING, token=st.sampled_from(VENDOR_TOKENS + KEY_BLOCKS))
def test_a_vendor_token_or_key_anywhere_in_text_is_removed(prefix: str, suffix: str, token: str) -> None:
    out = redact(f"{prefix} {token} {suffix}")
    body = token.splitlines()[1] if "\n" in token else token
    assert body not in out


@PROPS
@given(prefix=SURROUNDING, suffix=SURROUNDING, phrase=PHRASES, secret=PASSWORDS)
def test_a_password_phrase_anywhere_in_text_is_removed(prefix: str, suffix: str, phrase: str, secret: str) -> None:
    assume(secret not in prefix + suffix)
    out = redact(f"{prefix}\n{phrase.format(secret)} {suffix}")
    assert secret not in out


@PROPS
@given(text=st.one_of(SURROUNDING, st.builds(lambda a, t, b: f"{a} {t} {b}", SURROUNDING,
                                               st.sampled_from(VENDOR_TOKENS + [t for t, _ in IN_CONTEXT]),
                                               SURROUNDING)))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


ORDINARY = [
    "Summarise the meeting about the GPU rig's thermal limits.\nKeep it short.",
    "Your password is required. The password is case-sensitive and must not be empty.",
    "If the password is incorrect, the login page says so; the password is stored hashed.",
    "Each token is about four characters of English; the model saw 2000 tokens per second.",
    "The secret to a good sauce is patience.",
    "def login(user, password):\n    return check(user, password)\n",
    'password = os.environ["DB_PASSWORD"]\napi_key = getenv("API_KEY")\ntoken = None\n',
    "export DB_PASSWORD=${DB_PASSWORD}\nsecret: <your secret here>\n",
    "curl https://example.org/api/v1/models | jq .data",
    "git clone https://github.com/ggml-org/llama.cpp && cmake -B build",
    "The router falls back from tier t2 to t1 when the breaker opens (3 failures in a row).",
    "ssh-keygen -t ed25519 writes id_ed25519 and id_ed25519.pub; never paste the first one.",
    "for i in range(10):\n    total += i * 2  # skip the odd ones\n",
    "Transcribe clip_0042.mp4 with whisper small.en, then embed the segments with MiniLM.",
    "The task failed with exit code 137 after 3 retries; see logs/workers/gpu0.log.",
    "SELECT id, name FROM users WHERE created_at > now() - interval '1 day';",
    "Set temp_hot_c = 83 and temp_resume_c = 75 so the guard has hysteresis.",
    "A passing grade is 60; the test passes when every check is green.",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_prose_and_code_are_unchanged(text: str) -> None:
    assert redact(text) == text


@PROPS
@given(parts=st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=5), sep=st.sampled_from(["\n", " ", "\n\n"]))
def test_ordinary_text_in_any_combination_is_unchanged(parts: list[str], sep: str) -> None:
    text = sep.join(parts)
    assert redact(text) == text
