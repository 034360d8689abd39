#!/usr/bin/env bash
# check-size.sh: the size rules of STYLE.md, checked: no source file over
# 600 lines, no function over 80 lines.
#
#   scripts/check-size.sh                          # list every offender; exit 1 if any
#   scripts/check-size.sh --allowlist FILE         # exit 1 on an offender not in FILE,
#                                                  # or an entry of FILE that no longer offends
#   scripts/check-size.sh --root DIR ...           # check another tree (default: the repo)
#
# An offender is written as it appears in the allowlist:
#   file <path> <lines>                 a source file over 600 lines
#   function <path> <name> <lines>      a function over 80 lines
# The allowlist holds "file <path>" and "function <path> <name>" (no counts,
# so that a file may shrink without touching the list), plus comments (#).
# A listed entry that no longer offends fails the check too: the list only
# shrinks, and whoever fixes an offender removes its line.
#
# Function length is a heuristic, not a parser: braces are matched after
# comments, string and character literals are blanked; a function starts at
# a `{` whose header (the text since the previous `;`, `{` or `}`) holds a
# `(` and is not a control statement, namespace, class, struct, enum, union
# or `extern "C"`, outside any other function; it runs from the header's
# first line to the matching `}`. Known limits: a constructor's brace
# initialisers (`a_{1}`) split its header, so its body is measured from the
# last of them; raw string literals with braces, and macros that open or
# close braces, confuse it; a lambda in a function counts toward that
# function; a function's name is the identifier before its first `(`, so
# overloads in one file share an entry.
set -euo pipefail

readonly kMaxFileLines=600
readonly kMaxFunctionLines=80
readonly kDirs=(runtime shadows drivers recorder faultinject control cli machine campaign protocols)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
allowlist=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --allowlist) allowlist="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    *) echo "check-size.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Every offender of the tree, one per line, sorted.
offenders() {
  local dirs=()
  for d in "${kDirs[@]}"; do [[ -d "$root/$d" ]] && dirs+=("$d"); done
  [[ ${#dirs[@]} -eq 0 ]] && return 0
  (cd "$root" && find "${dirs[@]}" -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cpp' \) -print0 |
     sort -z | xargs -0 -r awk -v max_file="$kMaxFileLines" -v max_fn="$kMaxFunctionLines" '
    function report_file() {
      if (file != "" && lines > max_file) printf "file %s %d\n", file, lines
    }
    FNR == 1 { report_file(); file = FILENAME; lines = 0; depth = 0; fn_depth = -1; in_block = 0; header = ""; header_line = 0 }
    {
      lines = FNR
      s = $0
      # Blank block comments, string and character literals, line comments.
      out = ""
      i = 1
      n = length(s)
      while (i <= n) {
        c = substr(s, i, 1)
        if (in_block) {
          if (substr(s, i, 2) == "*/") { in_block = 0; i += 2 } else i++
          continue
        }
        if (substr(s, i, 2) == "/*") { in_block = 1; i += 2; continue }
        if (substr(s, i, 2) == "//") break
        # A quote after a digit is a digit separator (1\047000), not a literal.
        if (c == "\"" || (c == "\047" && !(i > 1 && substr(s, i - 1, 1) ~ /[0-9A-Fa-f]/))) {
          q = c; i++
          while (i <= n && substr(s, i, 1) != q) { if (substr(s, i, 1) == "\\") i++; i++ }
          i++; out = out q q; continue
        }
        out = out c; i++
      }
      if (out ~ /^[ \t]*#/) next  # preprocessor lines
      for (i = 1; i <= length(out); i++) {
        c = substr(out, i, 1)
        if (c == "{") {
          h = header
          gsub(/^[ \t]+/, "", h)
          if (fn_depth < 0 && h ~ /\(/ &&
              h !~ /^(if|for|while|switch|do|else|try|catch|namespace|class|struct|enum|union|extern)[^A-Za-z0-9_]/ &&
              h !~ /^(return|case|default)[^A-Za-z0-9_]/) {
            fn_depth = depth
            fn_start = header_line ? header_line : FNR
            name = h
            sub(/\(.*/, "", name)
            sub(/.*[ \t*&]/, "", name)
          }
          depth++
          header = ""; header_line = 0
        } else if (c == "}") {
          depth--
          if (depth == fn_depth) {
            if (FNR - fn_start + 1 > max_fn) printf "function %s %s %d\n", FILENAME, name, FNR - fn_start + 1
            fn_depth = -1
          }
          header = ""; header_line = 0
        } else if (c == ";") {
          header = ""; header_line = 0
        } else {
          if (header_line == 0 && c !~ /[ \t]/) header_line = FNR
          if (header_line) header = header c
        }
      }
      if (header_line) header = header " "
    }
    END { report_file() }
  ') | sort
}

found="$(offenders)"

if [[ -z "$allowlist" ]]; then
  [[ -z "$found" ]] && exit 0
  echo "$found"
  exit 1
fi

[[ -f "$allowlist" ]] || { echo "check-size.sh: no allowlist $allowlist" >&2; exit 2; }
# The allowlist's entries, comments and blank lines dropped.
listed="$(sed -e 's/#.*//' -e 's/[ \t]*$//' -e '/^$/d' "$allowlist" | sort -u)"
# Offenders as keys (without their counts).
keys="$(echo "$found" | awk 'NF { $NF = ""; sub(/ $/, ""); print }' | sort -u)"

status=0
new="$(comm -23 <(echo "$keys" | sed '/^$/d') <(echo "$listed" | sed '/^$/d'))"
if [[ -n "$new" ]]; then
  echo "Over the size limits ($kMaxFileLines lines a file, $kMaxFunctionLines a function), not in $(basename "$allowlist"):"
  while read -r key; do echo "$found" | grep -F -- "$key " | sed 's/^/  /'; done <<< "$new"
  status=1
fi
stale="$(comm -13 <(echo "$keys" | sed '/^$/d') <(echo "$listed" | sed '/^$/d'))"
if [[ -n "$stale" ]]; then
  echo "Listed in $(basename "$allowlist") but within the limits now (remove the line):"
  echo "$stale" | sed 's/^/  /'
  status=1
fi
[[ $status -eq 0 ]] && echo "size check: $(echo "$keys" | sed '/^$/d' | wc -l) known offenders, nothing new"
exit $status
