"""What counts as a secret: the rule table behind ``redact.py``.

Vendor formats follow the rule lists of well-known secret scanners (gitleaks,
detect-secrets): a fixed prefix and a charset/length, so they are found anywhere without
a label. Everything else needs context: a label (``password=``, ``AccountKey=``), a
header (``Authorization: Bearer``), a URL's user-info, or a sentence ("the root password
is ..."). docs/routing.md lists what is covered.
"""

from __future__ import annotations

import re

# Every private key armour: PEM (PKCS#1 RSA, SEC1 EC, DSA, PKCS#8 and ENCRYPTED), OpenSSH,
# PGP/GPG (PRIVATE KEY BLOCK, SECRET KEY BLOCK), and PuTTY .ppk private lines. An
# unterminated block is redacted to the end of the text (a truncated paste still leaks).
PRIVATE_KEY_BLOCKS = (
    re.compile(r"-----BEGIN[ A-Z0-9]*(?:PRIVATE|SECRET) KEY(?: BLOCK)?-----.*?"
               r"(?:-----END[ A-Z0-9]*(?:PRIVATE|SECRET) KEY(?: BLOCK)?-----|\Z)", re.DOTALL),
    re.compile(r"(?m)^Private-Lines: *\d+\r?\n(?:[A-Za-z0-9+/=]+\r?\n?)+"),  # PuTTY-User-Key-File
)

# name, pattern. Prefixed formats; the boundary checks keep them off the middle of words.
_B = r"(?<![A-Za-z0-9_\-])"  # not glued to a longer identifier on the left
VENDOR_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(rx)) for name, rx in (
    ("anthropic", _B + r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    ("openai", _B + r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{16,}"),
    ("aws-access-key-id", r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b"),
    ("github", _B + r"gh[pousr]_[A-Za-z0-9]{20,}"),
    ("github-fine-grained", _B + r"github_pat_[A-Za-z0-9_]{22,}"),
    ("gitlab", _B + r"gl(?:pat|ptt|dt|rt|cbt|oas|ft|imt|soat|agent)-[A-Za-z0-9_\-]{20,}"),
    ("gitlab-runner-registration", r"\bGR1348941[A-Za-z0-9_\-]{20,}"),
    ("slack", _B + r"xox[abposre]-[A-Za-z0-9-]{10,}"),
    ("slack-app", _B + r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+"),
    ("slack-webhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_\-]{20,}"),
    ("stripe", _B + r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"),
    ("stripe-webhook", _B + r"whsec_[A-Za-z0-9]{20,}"),
    ("google-api-key", _B + r"AIza[0-9A-Za-z_\-]{30,}"),
    ("google-oauth-access", _B + r"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("google-oauth-secret", _B + r"GOCSPX-[0-9A-Za-z_\-]{20,}"),
    ("huggingface", _B + r"hf_[A-Za-z0-9]{20,}"),
    ("jwt", _B + r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("twilio-api-key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("sendgrid", _B + r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}"),
    ("npm", _B + r"npm_[A-Za-z0-9]{36}\b"),
    ("pypi", _B + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("azure-ad-client-secret", r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"),
    ("mailgun", _B + r"key-[0-9a-zA-Z]{32}\b"),
    ("mailchimp", r"\b[0-9a-f]{32}-us\d{1,2}\b"),
    ("square", _B + r"sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,}"),
    ("shopify", _B + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("digitalocean", _B + r"do[opr]_v1_[a-f0-9]{64}"),
    ("databricks", r"\bdapi[a-f0-9]{32}\b"),
    ("hashicorp-vault", _B + r"hv[sbr]\.[A-Za-z0-9_\-]{24,}"),
    ("age", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    ("groq", _B + r"gsk_[A-Za-z0-9]{40,}"),
    ("replicate", _B + r"r8_[A-Za-z0-9]{30,}"),
    ("perplexity", _B + r"pplx-[A-Za-z0-9]{40,}"),
    ("xai", _B + r"xai-[A-Za-z0-9]{40,}"),
    ("telegram-bot", r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}\b"),
))

# Labels count inside environment-style names too (DB_PASSWORD, AWS_SECRET_ACCESS_KEY):
# "_" is a word character, so \b would not see a label there.
LABEL_START = r"(?<![A-Za-z0-9])"
BEARER = re.compile(r"(?i)" + LABEL_START + r"(bearer|token)(\s*[:=]?\s*)(\r?\n\s*)?([A-Za-z0-9_\-\.=+/]{12,})")
LABELLED = re.compile(
    r"(?im)" + LABEL_START + r"((?:password|passwd|passphrase|passcode|pwd|secret|api[_-]?key|apikey|"
    r"access[_-]?token|auth[_-]?token|client[_-]?secret|private[_-]?key|x-api-key|authorization|"
    r"account[_-]?key|shared[_-]?access[_-]?key|sharedaccesssignature|sig)(?:[_\-][A-Za-z0-9]+)*)"
    r"(\"?'?\s*[:=]\s*)(\r?\n[ \t]*)?(\"[^\"\n]*\"|'[^'\n]*'|<[^<>\n]*>|(?:(?:basic|bearer|token|digest)[ \t]+)?[^\s,;&]+)")
# Values that only point at a secret kept elsewhere: left as they are (code stays readable).
REFERENCE_VALUE = re.compile(
    r"""^["']?(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%\(?[A-Za-z_]+\)?s?|<[^<>]*>|\{\{[^{}]*\}\}|\*+|x{3,}|None|null|nil|"""
    r"""true|false|""|''|\[REDACTED\]|(?:os\.)?(?:environ|getenv)\b.*|[A-Za-z_][A-Za-z0-9_.]*\(.*\))["']?$""",
    re.IGNORECASE)
URL_CREDS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")
EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")

# "the root password is hunter2", "my passphrase was 'correct horse'", "the password for
# the db is now s3cret", "API key is ...". The secret is the word (or quoted words) after the verb.
PHRASE = re.compile(
    r"(?i)" + LABEL_START + r"((?:pass(?:word|phrase|code|wd)|pwd|pin\s+code|api[ _-]?key|access[ _-]?key|"
    r"secret[ _-]?key|(?:api|access|auth|bearer|secret)[ _-]?token)"
    r"(?:[ \t]+(?:for|of|on|to)(?:[ \t]+[\w.@:/\-]+){1,4}?)?"
    r"[ \t]+(?:is[ \t]+set[ \t]+to|is[ \t]+now|is[ \t]+still|is|was|will[ \t]+be|has[ \t]+been|set[ \t]+to|"
    r"reads|remains)(?:[ \t]*:[ \t]*|[ \t]+))(?!\[REDACTED\])"
    r"(\"[^\"\n]+\"|'[^'\n]+'|\u201c[^\u201d\n]+\u201d|[^\s\"'\u201c]+?)(?=[.,;:!?)\]]*(?:\s|$))")
# Words after "password is" that describe it instead of being it (ordinary prose).
PHRASE_STOPWORDS = frozenset(["a", "an", "the", "not", "no", "too", "very", "also", "still", "now", "required", "incorrect", "correct", "wrong", "invalid", "valid", "empty", "missing", "set", "unset", "stored", "hashed", "encrypted", "salted", "needed", "optional", "mandatory", "case-sensitive", "expired", "changed", "weak", "strong", "short", "long", "blank", "reset", "different", "same", "shown", "hidden", "masked", "ok", "okay", "fine", "secure", "insecure", "known", "unknown", "redacted", "given", "generated", "rotated", "sent", "saved", "visible", "in", "on", "at", "of", "for", "to", "from", "with", "by", "your", "my", "our", "their", "his", "her", "its", "this", "that", "these", "those", "what", "where", "which", "how", "when", "why", "used", "usually", "always", "never", "only", "just", "being"])
