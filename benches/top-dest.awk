# The `dest` of each NDJSON record (one per line, as maillog writes them), decoded, one a line;
# the empty dest as `<>`; a record without dest prints nothing. Run with LC_ALL=C (bytes, not
# characters), mawk preferred. Used by benches/top.sh.
#
# maillog escapes a string as serde_json does: `\"`, `\\`, `\b \t \n \f \r`, `\u00XX` for the
# other control characters, everything else as is; this decodes any JSON escape (\/ and \uXXXX
# with surrogate pairs too). A value never holds an unescaped `"`, and `"dest":"` can only be
# the key: inside a value its second quote would be escaped.
BEGIN { key = "\"dest\":\""; keylen = length(key); HEX = "0123456789abcdef" }

function hex4(s,   i, v, d) {
  v = 0
  for (i = 1; i <= 4; i++) {
    d = index(HEX, tolower(substr(s, i, 1)))
    if (d == 0) return -1
    v = v * 16 + d - 1
  }
  return v
}

function utf8(cp) {
  if (cp < 128) return sprintf("%c", cp)
  if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
  if (cp < 65536)
    return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
  return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64,
                 128 + int(cp / 64) % 64, 128 + cp % 64)
}

# The string that starts at s (after its opening quote), decoded, up to its closing quote.
function decode(s,   out, n, k, c, cp, lo) {
  out = ""; n = length(s)
  for (k = 1; k <= n; k++) {
    c = substr(s, k, 1)
    if (c == "\"") return out
    if (c != "\\") { out = out c; continue }
    c = substr(s, ++k, 1)
    if (c == "n") out = out "\n"
    else if (c == "t") out = out "\t"
    else if (c == "r") out = out "\r"
    else if (c == "b") out = out "\b"
    else if (c == "f") out = out "\f"
    else if (c == "u") {
      cp = hex4(substr(s, k + 1, 4)); k += 4
      if (cp >= 55296 && cp < 56320 && substr(s, k + 1, 2) == "\\u") {
        lo = hex4(substr(s, k + 3, 4))
        if (lo >= 56320 && lo < 57344) { cp = 65536 + (cp - 55296) * 1024 + lo - 56320; k += 6 }
      }
      if (cp >= 55296 && cp < 57344) cp = 65533   # a lone surrogate: U+FFFD
      out = out utf8(cp)
    }
    else out = out c                             # \" \\ \/
  }
  return out
}

{
  i = index($0, key)
  if (i == 0) next
  s = substr($0, i + keylen)
  v = substr(s, 1, index(s, "\"") - 1)
  if (index(v, "\\")) v = decode(s)              # an escape: the first quote may be one
  print (v == "" ? "<>" : v)
}
