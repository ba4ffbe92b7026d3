#!/usr/bin/env bash
# Installs the MKDNet plugin for pytracking: the pinned stack, pytracking at the pinned commit (or your own
# checkout), and the plugin made visible to pytracking's own entry points.
#
#   ./install.sh [--pytracking DIR] [--torch-index URL] [--python PYTHON]   # into a new .venv/ (the tested stack)
#   ./install.sh --env PYTHON|current [--pytracking DIR]                    # into an existing environment
#   ./install.sh --uninstall                                                # restores pytracking exactly
#
# --with-onnx (with either install) adds the onnx extra: onnx, onnxscript and onnxruntime for mkdnet-export --onnx and
# the onnxruntime tracking backend (requirements-onnx.txt into .venv); later runs keep it.
#
# What it changes inside the pytracking checkout is listed in settings/footprint.txt, settings/pytracking_patches/
# and docs/install.md. Either every change of a run is made, or (on any failure, Ctrl-C or kill) none is left behind; one
# run at a time (a second one waits for the first).
set -euo pipefail

PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTRACKING_URL=https://github.com/visionml/pytracking.git
DEFAULT_MIRROR=${XDG_CACHE_HOME:-$HOME/.cache}/pytracking-plugins/pytracking.git
VENV=$PROJECT_ROOT/.venv
STATE=$PROJECT_ROOT/.install-state
WORKSPACE=$PROJECT_ROOT/workspace
FOOTPRINT=$PROJECT_ROOT/settings/footprint.txt
PATCHES=$PROJECT_ROOT/settings/pytracking_patches
TEMPLATES=$PROJECT_ROOT/settings/local_templates
BUILD_CONSTRAINTS=$PROJECT_ROOT/settings/build-constraints.txt
ONNX_REQUIREMENTS=$PROJECT_ROOT/requirements-onnx.txt
PIP_VERSION=26.3            # >= 25.3 for --build-constraint
DISTRIBUTION=pytracking-mkdnet
PTH_NAME=pytracking_plugins.pth

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo pipefail$/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

MODE=install
PYTRACKING_DIR=
TORCH_INDEX=
PYTHON=${PYTHON:-python3}
TARGET_ENV=
WITH_ONNX=
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) MODE=uninstall ;;
    --pytracking) [ $# -ge 2 ] || die "--pytracking needs a folder"; PYTRACKING_DIR=$2; shift ;;
    --pytracking=*) PYTRACKING_DIR=${1#*=} ;;
    --torch-index) [ $# -ge 2 ] || die "--torch-index needs a URL"; TORCH_INDEX=$2; shift ;;
    --torch-index=*) TORCH_INDEX=${1#*=} ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PYTHON=$2; shift ;;
    --python=*) PYTHON=${1#*=} ;;
    --env) [ $# -ge 2 ] || die "--env needs an interpreter (or 'current')"; TARGET_ENV=$2; shift ;;
    --env=*) TARGET_ENV=${1#*=} ;;
    --with-onnx) WITH_ONNX=yes ;;
    -h|--help) usage 0 ;;
    *) printf '[install] unknown option: %s\n' "$1" >&2; usage 2 ;;
  esac
  shift
done

sha() { sha256sum "$@" | cut -d' ' -f1; }
footprint() { grep -E "^$1 " "$FOOTPRINT" | cut -d' ' -f2-; }    # footprint KIND: the entries of one kind
PYTRACKING_COMMIT=$(footprint commit)
record() { mkdir -p "$STATE"; printf '%s\n' "$2" > "$STATE/$1"; }
recorded() { [ -f "$STATE/$1" ] && cat "$STATE/$1" || true; }

# ------------------------------------------------------------------------------------------------- transaction
# Every change to the pytracking checkout and to the environment is journalled *before* it is made; if the run
# fails or is interrupted (Ctrl-C, kill), the journal is undone in reverse, each entry only as far as it was done,
# so the run leaves things as they were.
JOURNAL=()
INTERRUPTED=
journal() { JOURNAL+=("$1"); }
rollback() {
  local status=$? i entry undo
  trap - EXIT
  trap '' INT TERM HUP          # the undoing itself is not interrupted (its commands inherit this)
  if [ -z "$INTERRUPTED" ]; then   # a command that Ctrl-C or kill ended first (bash then runs no trap of its own)
    case "$status" in 129) INTERRUPTED="interrupted (SIGHUP)" ;; 130) INTERRUPTED="interrupted (SIGINT)" ;;
                      143) INTERRUPTED="interrupted (SIGTERM)" ;; esac
  fi
  if [ "$status" -ne 0 ] && [ "${#JOURNAL[@]}" -gt 0 ]; then
    printf '[install] %s: undoing the %d change(s) this run made\n' "${INTERRUPTED:-failed}" "${#JOURNAL[@]}" >&2
    for ((i = ${#JOURNAL[@]} - 1; i >= 0; i--)); do
      entry=${JOURNAL[i]}
      case "$entry" in
        patch:*)
          [ "$(patch_state "${entry#patch:}")" != applied ] \
            || git -C "$PYTRACKING_DIR" apply --reverse "${entry#patch:}" && rm -f "$APPLIED/$(basename "${entry#patch:}")" ;;
        unpatch:*)
          undo=${entry#unpatch:}
          { [ "$(patch_state "$undo")" != absent ] || git -C "$PYTRACKING_DIR" apply "$undo"; } \
            && cp "$undo" "$APPLIED/$(basename "${undo%.undo}")" ;;
        file:*) rm -f "${entry#file:}" ;;
        restore:*) mv -f "${entry#restore:}.before-install" "${entry#restore:}" ;;
        state:*) rm -f "$STATE/${entry#state:}" ;;
        pip:*) "${entry#pip:}" -m pip uninstall --quiet --yes "$DISTRIBUTION" >/dev/null 2>&1 || true ;;
      esac || printf '[install] could not undo %s\n' "$entry" >&2
    done
  fi
  exit "$status"
}
on_signal() {  # on_signal NAME NUMBER: an interruption ends the run as a failure does (EXIT runs rollback)
  trap '' INT TERM HUP
  INTERRUPTED="interrupted (SIG$1)"
  exit $((128 + $2))
}

# ------------------------------------------------------------------------------------------------ one at a time
take_lock() {  # holds .install-state/lock (flock) until the script ends; a second run waits for the first
  mkdir -p "$STATE"
  exec 9>>"$STATE/lock"
  if ! command -v flock >/dev/null 2>&1; then
    say "flock (util-linux) not found: nothing keeps a second install.sh from running at the same time"
    return
  fi
  if ! flock -n 9; then
    say "another install.sh is running in $PROJECT_ROOT (process $(cat "$STATE/lock" 2>/dev/null || echo '?')): waiting for it to finish"
    flock 9
  fi
  printf '%s\n' "$$" > "$STATE/lock"
}

# ---------------------------------------------------------------------------------------------------- pytracking
obtain_pytracking() {
  local target=$PROJECT_ROOT/external/pytracking source previous
  previous=$(recorded pytracking_dir)
  if [ -n "$PYTRACKING_DIR" ]; then
    [ -d "$PYTRACKING_DIR/ltr" ] && [ -d "$PYTRACKING_DIR/pytracking" ] \
      || die "--pytracking $PYTRACKING_DIR is not a pytracking checkout (no ltr/ and pytracking/ folders in it)"
    PYTRACKING_DIR=$(cd "$PYTRACKING_DIR" && pwd)
    [ -z "$previous" ] || [ "$previous" = "$PYTRACKING_DIR" ] \
      || die "the plugin is installed into $previous; run ./install.sh --uninstall first"
    return
  fi
  PYTRACKING_DIR=$previous
  [ -n "$PYTRACKING_DIR" ] && [ -d "$PYTRACKING_DIR" ] && return
  PYTRACKING_DIR=$target
  [ -d "$target/.git" ] && return
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
check_python() {  # check_python PYTHON OPTION: dies unless it is a Python this plugin supports
  local version
  version=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
    || die "$2 $1: not a Python interpreter (it does not run Python code); give the python executable, e.g. $2 /path/to/env/bin/python"
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$2 $1: Python >= 3.11 is needed, it is Python $version"
}

choose_environment() {  # sets ENV_PYTHON: the interpreter of the environment the plugin goes into
  local previous; previous=$(recorded env_python)
  if [ -z "$TARGET_ENV" ]; then
    ENV_PYTHON=$VENV/bin/python
  else
    [ "$TARGET_ENV" = current ] && TARGET_ENV=$(command -v python || command -v python3 || true)
    [ -n "$TARGET_ENV" ] || die "--env current: no python on PATH; activate your environment first"
    check_python "$TARGET_ENV" --env
    ENV_PYTHON=$("$TARGET_ENV" -c 'import sys; print(sys.executable)')
    [ "$ENV_PYTHON" != "$VENV/bin/python" ] || ENV_PYTHON=$VENV/bin/python
  fi
  [ -z "$previous" ] || [ "$previous" = "$ENV_PYTHON" ] \
    || die "the plugin is installed into the environment of $previous; run ./install.sh --uninstall first"
}

quietly() {  # runs a command, showing its output only if it fails (setuptools warns on every editable build)
  local output
  if ! output=$("$@" 2>&1); then printf '%s\n' "$output" >&2; return 1; fi
}

site_packages() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

install_packages() {
  local pip=("$ENV_PYTHON" -m pip --disable-pip-version-check) wanted extra=
  [ -z "$WITH_ONNX" ] || extra='[onnx]'
  if [ "$ENV_PYTHON" = "$VENV/bin/python" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
      check_python "$PYTHON" --python
      say "creating $VENV"
      "$PYTHON" -m venv "$VENV"
    fi
    wanted=$(printf 'venv\n%s\n%s\n%s\n%s\n' "$(sha "$PROJECT_ROOT/requirements.txt" "$PROJECT_ROOT/pyproject.toml" \
      "$BUILD_CONSTRAINTS")" "$TORCH_INDEX" "$PIP_VERSION" "${WITH_ONNX:+onnx $(sha "$ONNX_REQUIREMENTS")}")
  else
    wanted=$(printf 'env %s\n%s\n%s\n' "$ENV_PYTHON" "$(sha "$PROJECT_ROOT/pyproject.toml" "$BUILD_CONSTRAINTS")" \
      "${WITH_ONNX:+onnx}")
  fi
  [ "$(recorded packages)" = "$wanted" ] && return
  if ! "$ENV_PYTHON" -m pip --version >/dev/null 2>&1; then
    "$ENV_PYTHON" -m ensurepip --upgrade >/dev/null || die "$ENV_PYTHON has no pip and ensurepip failed"
  fi
  if [ "$ENV_PYTHON" = "$VENV/bin/python" ]; then
    say "installing the pinned stack (requirements.txt${WITH_ONNX:+ and requirements-onnx.txt}) into .venv"
    "${pip[@]}" install --quiet "pip==$PIP_VERSION"
    if [ -n "$TORCH_INDEX" ]; then
      "${pip[@]}" install --quiet --index-url "$TORCH_INDEX" \
        $(grep -E '^(torch|torchvision)==' "$PROJECT_ROOT/requirements.txt")
    fi
    "${pip[@]}" install --quiet --build-constraint "$BUILD_CONSTRAINTS" -r "$PROJECT_ROOT/requirements.txt" \
      ${WITH_ONNX:+-r "$ONNX_REQUIREMENTS"}
    quietly "${pip[@]}" install --quiet --build-constraint "$BUILD_CONSTRAINTS" --no-deps --editable "$PROJECT_ROOT"
  else
    say "installing the plugin and its dependencies (pyproject.toml${extra:+, extra $extra}) into the environment" \
      "of $ENV_PYTHON"
    "$ENV_PYTHON" -c 'import sys; import pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (25, 3))' \
      || "${pip[@]}" install --quiet "pip>=25.3"
    "${pip[@]}" show --quiet "$DISTRIBUTION" >/dev/null 2>&1 || journal "pip:$ENV_PYTHON"
    quietly "${pip[@]}" install --quiet --build-constraint "$BUILD_CONSTRAINTS" --editable "$PROJECT_ROOT$extra"
  fi
  journal "state:packages"; record packages "$wanted"
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

# ---------------------------------------------------------------------------------------------------- patches
# Each applied patch is recorded in .install-state/patches/ and reverted from that record, so an updated plugin
# whose patch changed still restores pytracking exactly.
APPLIED=$STATE/patches

patch_state() {  # patch_state PATCH: applied | absent | conflict
  if git -C "$PYTRACKING_DIR" apply --check --reverse "$1" 2>/dev/null; then echo applied
  elif git -C "$PYTRACKING_DIR" apply --check "$1" 2>/dev/null; then echo absent
  else echo conflict; fi
}

explain_conflict() {  # explain_conflict PATCH STATE: which file and line differ from what the plugin expects
  local patch=$1 expected=$2 scratch file other
  scratch=$(mktemp -d)
  printf '[install] error: lines that the plugin patched (%s) were changed in %s since it was applied\n' \
    "$(basename "$patch")" "$PYTRACKING_DIR" >&2
  git -C "$PYTRACKING_DIR" apply --check --reverse -v "$patch" 2>&1 | grep -E '^error: patch failed' \
    | sed "s|^error: patch failed: |[install]   the first hunk that no longer matches: |" >&2 || true
  for file in $(git -C "$PYTRACKING_DIR" apply --numstat "$patch" | cut -f3); do
    # What the plugin expects there: the committed file with every recorded patch (and this one) applied.
    mkdir -p "$scratch/$(dirname "$file")"
    git -C "$PYTRACKING_DIR" show "HEAD:$file" > "$scratch/$file" 2>/dev/null || continue
    for other in "$APPLIED"/*.patch; do
      [ -f "$other" ] && [ "$(basename "$other")" != "$(basename "$patch")" ] || continue
      (cd "$scratch" && git apply --include="$file" "$other" 2>/dev/null) || true
    done
    [ "$expected" = applied ] && { (cd "$scratch" && git apply --include="$file" "$patch" 2>/dev/null) || true; }
    if ! cmp -s "$scratch/$file" "$PYTRACKING_DIR/$file"; then
      printf '[install] %s was edited; the difference from what the plugin expects:\n' "$PYTRACKING_DIR/$file" >&2
      diff -u --label "$file (expected)" --label "$file (now)" "$scratch/$file" "$PYTRACKING_DIR/$file" \
        | sed 's/^/[install]   /' >&2 || true
    fi
  done
  rm -rf "$scratch"
  printf '[install] undo that edit (or keep a copy of it elsewhere) and run this again\n' >&2
}

# -------------------------------------------------------------------------------------------------- preflight
preflight_install() {  # everything that could stop the install is checked before the first change
  local patch record link target
  mkdir -p "$APPLIED"
  for record in "$APPLIED"/*.patch; do
    [ -f "$record" ] || continue
    cmp -s "$record" "$PATCHES/$(basename "$record")" && continue
    [ "$(patch_state "$record")" = applied ] || { explain_conflict "$record" applied; die "nothing was changed"; }
  done
  for patch in "$PATCHES"/*.patch; do
    record=$APPLIED/$(basename "$patch")
    # A patch this version changed replaces its record, checked above; whether it applies after the record is
    # reverted shows only then (a failure there is rolled back like any other).
    [ -f "$record" ] && ! cmp -s "$record" "$patch" && continue
    case "$(patch_state "$patch")" in
      applied|absent) ;;
      conflict)
        if [ -f "$record" ]; then explain_conflict "$patch" applied; die "nothing was changed"; fi
        die "$(basename "$patch") does not apply to $PYTRACKING_DIR (is it at commit $PYTRACKING_COMMIT? it is at $(git -C "$PYTRACKING_DIR" rev-parse HEAD))" ;;
    esac
  done
  while read -r link target; do
    link=$PYTRACKING_DIR/$link; target=$PROJECT_ROOT/$target
    [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ] && continue
    { [ -e "$link" ] || [ -L "$link" ]; } && die "$link exists and is not the plugin's link; move it away first"
  done < <(footprint link)
  return 0
}

# ----------------------------------------------------------------------------------------------------- changes
apply_patches() {
  local patch record
  for record in "$APPLIED"/*.patch; do   # patches this version of the plugin changed or no longer has
    [ -f "$record" ] || continue
    cmp -s "$record" "$PATCHES/$(basename "$record")" && continue
    cp "$record" "$STATE/$(basename "$record").undo"
    journal "unpatch:$STATE/$(basename "$record").undo"; git -C "$PYTRACKING_DIR" apply --reverse "$record"
    rm "$record"
    say "reverted the previous $(basename "$record")"
  done
  for patch in "$PATCHES"/*.patch; do
    record=$APPLIED/$(basename "$patch")
    if [ "$(patch_state "$patch")" = absent ]; then
      journal "patch:$patch"; git -C "$PYTRACKING_DIR" apply "$patch"
      say "patched pytracking: $(basename "$patch")"
    fi
    cmp -s "$patch" "$record" || cp "$patch" "$record"
  done
}

make_links() {
  local link target
  while read -r link target; do
    link=$PYTRACKING_DIR/$link; target=$PROJECT_ROOT/$target
    [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ] && continue
    journal "file:$link"; ln -s "$target" "$link"
    say "linked $link -> $target"
  done < <(footprint link)
}

write_local_files() {
  local file template
  mkdir -p "$STATE" "$WORKSPACE"/{networks,pretrained_networks,tracking_results,result_plots,tensorboard} \
    "$WORKSPACE"/{parameter,train_settings}/mkdnet   # your own parameter files and train settings
  while read -r file template; do
    file=$PYTRACKING_DIR/$file; template=$TEMPLATES/$template
    [ -e "$file" ] && continue
    journal "file:$file"; sed "s|@WORKSPACE@|$WORKSPACE|g" "$template" > "$file"
    sha "$file" > "$STATE/$(basename "$template").sha256"
    say "wrote $file (edit it to set dataset paths)"
  done < <(footprint local)
}

write_pth() {  # puts pytracking on the environment's path (the plugin itself is an editable install)
  local pth; pth=$(site_packages "$ENV_PYTHON")/$PTH_NAME
  if [ -f "$pth" ] && [ "$(cat "$pth")" = "$PYTRACKING_DIR" ]; then return; fi
  if [ -f "$pth" ]; then cp "$pth" "$pth.before-install"; journal "restore:$pth"; else journal "file:$pth"; fi
  printf '%s\n' "$PYTRACKING_DIR" > "$pth"   # a folder on the path; it imports nothing
  say "wrote $pth"
}

check_install() {
  (cd / && "$ENV_PYTHON" -W ignore::FutureWarning \
     -c 'import ltr.models.tracking.dimpnet, pytracking.evaluation, ltr_plugins, pytracking_plugins') \
    || die "the installed plugin does not import; see the error above"
  [ -z "$WITH_ONNX" ] || (cd / && "$ENV_PYTHON" -c 'import onnx, onnxscript, onnxruntime') \
    || die "the onnx extra does not import; see the error above"
}

# ------------------------------------------------------------------------------------------------- uninstall
uninstall() {
  local records=() i link target file template recorded_sha env_python
  PYTRACKING_DIR=${PYTRACKING_DIR:-$(recorded pytracking_dir)}
  env_python=$(recorded env_python)
  if [ -z "$PYTRACKING_DIR" ] && [ -z "$env_python" ]; then say "nothing to uninstall"; exit 0; fi
  if [ -n "$PYTRACKING_DIR" ]; then
    [ -d "$PYTRACKING_DIR" ] || die "$PYTRACKING_DIR (from $STATE/pytracking_dir) does not exist"
    PYTRACKING_DIR=$(cd "$PYTRACKING_DIR" && pwd)
    [ -d "$APPLIED" ] && records=("$APPLIED"/*.patch)
    # Check every patch first: either all of them are reverted, or none is.
    local blocked=0
    for ((i = ${#records[@]} - 1; i >= 0; i--)); do
      [ -f "${records[i]}" ] || continue
      case "$(patch_state "${records[i]}")" in
        applied|absent) ;;
        conflict) explain_conflict "${records[i]}" applied; blocked=1 ;;
      esac
    done
    [ "$blocked" = 0 ] || { printf '[install] error: nothing was uninstalled\n' >&2; exit 1; }
    for ((i = ${#records[@]} - 1; i >= 0; i--)); do
      [ -f "${records[i]}" ] || continue
      if [ "$(patch_state "${records[i]}")" = applied ]; then
        git -C "$PYTRACKING_DIR" apply --reverse "${records[i]}"
        say "reverted $(basename "${records[i]}")"
      fi
      rm "${records[i]}"
    done
    while read -r link target; do
      link=$PYTRACKING_DIR/$link; target=$PROJECT_ROOT/$target
      if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then rm "$link"; say "removed $link"; fi
    done < <(footprint link)
    while read -r file template; do
      file=$PYTRACKING_DIR/$file; recorded_sha=$STATE/$template.sha256
      if [ -f "$file" ] && [ -f "$recorded_sha" ] && [ "$(sha "$file")" = "$(cat "$recorded_sha")" ]; then
        rm "$file"; say "removed $file (unedited since install)"
      elif [ -f "$recorded_sha" ]; then
        say "kept $file: you edited it"
      fi
      rm -f "$recorded_sha"
    done < <(footprint local)
  fi
  if [ -n "$env_python" ] && [ -x "$env_python" ]; then
    rm -f "$(site_packages "$env_python")/$PTH_NAME"
    "$env_python" -m pip uninstall --quiet --yes "$DISTRIBUTION" >/dev/null 2>&1 || true
    say "removed the plugin from the environment of $env_python"
  fi
  rm -f "$STATE/pytracking_dir" "$STATE/env_python" "$STATE/packages" "$STATE/onnx"
  say "uninstalled${PYTRACKING_DIR:+ from $PYTRACKING_DIR} (.venv, workspace/ and external/ are left in place)"
}

# ---------------------------------------------------------------------------------------------------------- main
take_lock
if [ "$MODE" = uninstall ]; then uninstall; exit 0; fi

command -v git >/dev/null 2>&1 || die "git is needed"
trap rollback EXIT
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP
obtain_pytracking
choose_environment
preflight_install
# Recorded before the first change, so that --uninstall finds whatever a run (even a failed one) changed.
[ -n "$(recorded pytracking_dir)" ] || { journal "state:pytracking_dir"; record pytracking_dir "$PYTRACKING_DIR"; }
[ -n "$(recorded env_python)" ] || { journal "state:env_python"; record env_python "$ENV_PYTHON"; }
[ "$(recorded onnx)" != yes ] || WITH_ONNX=yes       # an earlier --with-onnx: its extra stays
[ -z "$WITH_ONNX" ] || [ "$(recorded onnx)" = yes ] || { journal "state:onnx"; record onnx yes; }
install_packages
install_turbojpeg
apply_patches
make_links
write_local_files
write_pth
check_install
rm -f "$STATE"/*.undo "$(site_packages "$ENV_PYTHON")/$PTH_NAME.before-install"
trap - EXIT
say "ready: pytracking at $PYTRACKING_DIR, Python at $ENV_PYTHON"
