# Sourced by dev.sh and test.sh. need CMD:PACKAGE[,PACKAGE...] ...: installs with apt-get the
# Debian packages of every CMD that is not on PATH, and says which and for what.
need() {
  local spec missing=() packages=()
  for spec in "$@"; do
    if ! command -v "${spec%%:*}" >/dev/null 2>&1; then
      missing+=("${spec%%:*}")
      IFS=, read -ra more <<<"${spec#*:}"
      packages+=("${more[@]}")
    fi
  done
  [ ${#packages[@]} -gt 0 ] || return 0
  echo "${missing[*]} not found: installing ${packages[*]} with apt-get" >&2
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
}
