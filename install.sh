#!/usr/bin/env bash
# Installs the MKDNet plugin for pytracking: a virtual environment with the pinned stack, pytracking at the pinned
# commit (or your own checkout), and the plugin made visible to pytracking's own entry points.
#
#   ./install.sh [--pytracking DIR] [--torch-index URL] [--python PYTHON]
#   ./install.sh --uninstall        # restores the pytracking checkout exactly (git status as before)
#
# Everything it does inside the pytracking checkout is listed in FOOTPRINT below and in README.md.
set -euo pipefail

PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTRACKING_COMMIT=7eb9e74bd3d40e29dbcec444902237da13de247b
PYTRACKING_URL=https://github.com/visionml/pytracking.git
DEFAULT_MIRROR=${XDG_CACHE_HOME:-$HOME/.cache}/pytracking-plugins/pytracking.git
VENV=$PROJECT_ROOT/.venv
STATE=$PROJECT_ROOT/.install-state
WORKSPACE=$PROJECT_ROOT/workspace
PATCHES=$PROJECT_ROOT/settings/pytracking_patches
TEMPLATES=$PROJECT_ROOT/settings/local_templates
PIP_VERSION=26.3   # >= 25.3 for --build-constraint (settings/build-constraints.txt)

# FOOTPRINT inside the pytracking checkout (all of it reverted by --uninstall):
#   links  <pytracking>/<link> -> <project>/<target>, the folders pytracking looks up by name
LINKS=(
  "ltr/train_settings/mkdnet:ltr_plugins/train_settings/mkdnet"
  "pytracking/tracker/mkdnet:pytracking_plugins/tracker/mkdnet"
  "pytracking/parameter/mkdnet:pytracking_plugins/parameter/mkdnet"
)
#   patches  settings/pytracking_patches/*.patch, each with its reason at its top
#   local.py files (git-ignored by pytracking), written only when absent:
LOCAL_FILES=(
  "ltr/admin/local.py:ltr_local.py"
  "pytracking/evaluation/local.py:pytracking_local.py"
)
# Outside the checkout: .venv/lib/python*/site-packages/pytracking_plugins.pth puts the project and pytracking on
# the path (two folders, no code).

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

MODE=install
PYTRACKING_DIR=
TORCH_INDEX=
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) MODE=uninstall ;;
    --pytracking) [ $# -ge 2 ] || die "--pytracking needs a folder"; PYTRACKING_DIR=$2; shift ;;
    --pytracking=*) PYTRACKING_DIR=${1#*=} ;;
    --torch-index) [ $# -ge 2 ] || die "--torch-index needs a URL"; TORCH_INDEX=$2; shift ;;
    --torch-index=*) TORCH_INDEX=${1#*=} ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PYTHON=$2; shift ;;
    --python=*) PYTHON=${1#*=} ;;
    -h|--help) usage 0 ;;
    *) printf '[install] unknown option: %s\n' "$1" >&2; usage 2 ;;
  esac
  shift
done

sha() { sha256sum "$@" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------------------- pytracking
remembered_pytracking() { [ -f "$STATE/pytracking_dir" ] && cat "$STATE/pytracking_dir" || true; }

obtain_pytracking() {
  local target=$PROJECT_ROOT/external/pytracking source
  if [ -n "$PYTRACKING_DIR" ]; then
    [ -d "$PYTRACKING_DIR/ltr" ] && [ -d "$PYTRACKING_DIR/pytracking" ] \
      || die "--pytracking $PYTRACKING_DIR is not a pytracking checkout (no ltr/ and pytracking/ folders in it)"
    PYTRACKING_DIR=$(cd "$PYTRACKING_DIR" && pwd)
    local previous; previous=$(remembered_pytracking)
    if [ -n "$previous" ] && [ "$previous" != "$PYTRACKING_DIR" ]; then
      die "the plugin is installed into $previous; run ./install.sh --uninstall first"
    fi
    return
  fi
  PYTRACKING_DIR=$(remembered_pytracking)
  [ -n "$PYTRACKING_DIR" ] && [ -d "$PYTRACKING_DIR" ] && return
  PYTRACKING_DIR=$target
  if [ -d "$target/.git" ]; then
    return
  fi
  if [ -n "${PYTRACKING_MIRROR:-}" ]; then
    source=$PYTRACKING_MIRROR
  elif [ -d "$DEFAULT_MIRROR" ]; then
    source=$DEFAULT_MIRROR
  else
    say "no mirror at $DEFAULT_MIRROR: creating it from $PYTRACKING_URL (the next install is offline)"
    mkdir -p "$(dirname "$DEFAULT_MIRROR")"
    git clone --quiet --mirror "$PYTRACKING_URL" "$DEFAULT_MIRROR.partial" \
      || die "cannot reach $PYTRACKING_URL; seed a mirror: git clone --mirror <any pytracking copy> $DEFAULT_MIRROR"
    mv "$DEFAULT_MIRROR.partial" "$DEFAULT_MIRROR"
    source=$DEFAULT_MIRROR
  fi
  say "cloning pytracking $PYTRACKING_COMMIT from $source"
  mkdir -p "$(dirname "$target")"
  rm -rf "$target.partial"
  git clone --quiet --no-checkout "$source" "$target.partial" || die "git clone $source failed"
  git -C "$target.partial" checkout --quiet "$PYTRACKING_COMMIT" \
    || die "$source has no commit $PYTRACKING_COMMIT; update the mirror (git -C $source fetch) or pass --pytracking"
  mv "$target.partial" "$target"
}

# ------------------------------------------------------------------------------------------------ environment
site_packages() { "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

make_venv() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
    || die "Python >= 3.10 is needed; $PYTHON is $("$PYTHON" --version 2>&1). Pass --python PYTHON"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local wanted; wanted=$(printf '%s\n%s\n' "$(sha "$PROJECT_ROOT/requirements.txt")" "$TORCH_INDEX")
  if [ -f "$STATE/requirements" ] && [ "$(cat "$STATE/requirements")" = "$wanted" ]; then
    return
  fi
  say "installing the pinned stack (requirements.txt) into .venv"
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  "${pip[@]}" install --quiet "pip==$PIP_VERSION"
  if [ -n "$TORCH_INDEX" ]; then
    "${pip[@]}" install --quiet --index-url "$TORCH_INDEX" \
      $(grep -E '^(torch|torchvision)==' "$PROJECT_ROOT/requirements.txt")
  fi
  "${pip[@]}" install --quiet --build-constraint "$PROJECT_ROOT/settings/build-constraints.txt" \
    -r "$PROJECT_ROOT/requirements.txt"
  mkdir -p "$STATE"
  printf '%s\n' "$wanted" > "$STATE/requirements"
}

install_turbojpeg() {
  # grep reads all input: with pipefail, grep -q would let ldconfig die of SIGPIPE and the test fail at random.
  if ldconfig -p 2>/dev/null | grep libturbojpeg >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing libturbojpeg0 (fast JPEG decoding through jpeg4py)"
    if (apt-get install -y -qq libturbojpeg0 >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libturbojpeg0 >/dev/null 2>&1; }); then
      return
    fi
  fi
  say "libturbojpeg is not installed (needs root and apt-get): pytracking decodes JPEGs with OpenCV instead"
}

# ---------------------------------------------------------------------------------------------------- footprint
# Each applied patch is recorded in .install-state/patches/, and reverted from that record: an updated plugin
# whose patch changed still restores pytracking exactly.
APPLIED=$STATE/patches

revert_patch() {  # revert_patch FILE: reverts FILE if it is applied
  if git -C "$PYTRACKING_DIR" apply --check --reverse "$1" 2>/dev/null; then
    git -C "$PYTRACKING_DIR" apply --reverse "$1"
    say "reverted $(basename "$1")"
  fi
}

apply_patches() {
  local patch record
  mkdir -p "$APPLIED"
  for record in "$APPLIED"/*.patch; do   # patches this version changed or no longer has
    [ -f "$record" ] || continue
    if ! cmp -s "$record" "$PATCHES/$(basename "$record")"; then revert_patch "$record"; rm "$record"; fi
  done
  for patch in "$PATCHES"/*.patch; do
    record=$APPLIED/$(basename "$patch")
    if ! git -C "$PYTRACKING_DIR" apply --check --reverse "$patch" 2>/dev/null; then
      git -C "$PYTRACKING_DIR" apply --check "$patch" 2>/dev/null \
        || die "$(basename "$patch") does not apply to $PYTRACKING_DIR (is it at commit $PYTRACKING_COMMIT?)"
      git -C "$PYTRACKING_DIR" apply "$patch"
      say "patched pytracking: $(basename "$patch")"
    fi
    cmp -s "$patch" "$record" || cp "$patch" "$record"
  done
}

revert_patches() {
  local records=() patches=("$PATCHES"/*.patch) i
  [ -d "$APPLIED" ] && records=("$APPLIED"/*.patch)
  for ((i = ${#records[@]} - 1; i >= 0; i--)); do
    [ -f "${records[i]}" ] || continue
    revert_patch "${records[i]}"; rm "${records[i]}"
  done
  for ((i = ${#patches[@]} - 1; i >= 0; i--)); do revert_patch "${patches[i]}"; done   # applied, not recorded
}

make_links() {
  local entry link target
  for entry in "${LINKS[@]}"; do
    link=$PYTRACKING_DIR/${entry%%:*}; target=$PROJECT_ROOT/${entry#*:}
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then continue; fi
    [ -e "$link" ] || [ -L "$link" ] && die "$link exists and is not the plugin's link; move it away first"
    ln -s "$target" "$link"
    say "linked $link -> $target"
  done
}

remove_links() {
  local entry link target
  for entry in "${LINKS[@]}"; do
    link=$PYTRACKING_DIR/${entry%%:*}; target=$PROJECT_ROOT/${entry#*:}
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then rm "$link"; say "removed $link"; fi
  done
}

write_local_files() {
  local entry file template
  mkdir -p "$STATE" "$WORKSPACE"/{networks,pretrained_networks,tracking_results,result_plots,tensorboard}
  for entry in "${LOCAL_FILES[@]}"; do
    file=$PYTRACKING_DIR/${entry%%:*}; template=$TEMPLATES/${entry#*:}
    [ -e "$file" ] && continue
    sed "s|@WORKSPACE@|$WORKSPACE|g" "$template" > "$file"
    sha "$file" > "$STATE/$(basename "$template").sha256"
    say "wrote $file (edit it to set dataset paths)"
  done
}

remove_unedited_local_files() {
  local entry file record
  for entry in "${LOCAL_FILES[@]}"; do
    file=$PYTRACKING_DIR/${entry%%:*}; record=$STATE/$(basename "${entry#*:}").sha256
    if [ -f "$file" ] && [ -f "$record" ] && [ "$(sha "$file")" = "$(cat "$record")" ]; then
      rm "$file"; say "removed $file (unedited since install)"
    elif [ -f "$record" ]; then
      say "kept $file: you edited it"
    fi
    rm -f "$record"
  done
}

write_pth() {
  local pth content
  pth=$(site_packages)/pytracking_plugins.pth
  content=$(printf '%s\n%s\n' "$PROJECT_ROOT" "$PYTRACKING_DIR")   # folders on the path, nothing imported
  if [ -f "$pth" ] && [ "$(cat "$pth")" = "$content" ]; then return; fi
  printf '%s\n' "$content" > "$pth"
  say "wrote $pth"
}

check_install() {
  (cd "$PROJECT_ROOT" && "$VENV/bin/python" -W ignore::FutureWarning \
     -c 'import ltr.models.tracking.dimpnet, pytracking.evaluation') \
    || die "the installed pytracking does not import; see the error above"
}

# ---------------------------------------------------------------------------------------------------------- main
if [ "$MODE" = uninstall ]; then
  [ -n "$PYTRACKING_DIR" ] || PYTRACKING_DIR=$(remembered_pytracking)
  [ -n "$PYTRACKING_DIR" ] || { say "nothing to uninstall"; exit 0; }
  [ -d "$PYTRACKING_DIR" ] || die "$PYTRACKING_DIR (from $STATE/pytracking_dir) does not exist"
  PYTRACKING_DIR=$(cd "$PYTRACKING_DIR" && pwd)
  revert_patches
  remove_links
  remove_unedited_local_files
  [ -x "$VENV/bin/python" ] && rm -f "$(site_packages)/pytracking_plugins.pth"
  rm -f "$STATE/pytracking_dir"
  say "uninstalled from $PYTRACKING_DIR (.venv, workspace/ and external/ are left in place)"
  exit 0
fi

command -v git >/dev/null 2>&1 || die "git is needed"
obtain_pytracking
make_venv
install_turbojpeg
apply_patches
make_links
write_local_files
write_pth
mkdir -p "$STATE"
printf '%s\n' "$PYTRACKING_DIR" > "$STATE/pytracking_dir"
check_install
say "ready: pytracking at $PYTRACKING_DIR, Python at $VENV/bin/python"
