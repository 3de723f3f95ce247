#!/usr/bin/env bash
# The Debian packages the tests use, in one place (the workflow itself needs none):
# `make test` and .ci/run call this script before the tests.
#
#   chromium, chromium-driver  the report is opened in headless Chromium (tests/browser.py)
#   slurm-wlm, munge           the SLURM profile runs on a real single-node cluster
#                              (tests/slurm_cluster.py)
#   python3-qgis               QGIS opens the products with their styles
#                              (tests/helpers/qgis_drawing.py)
#
# Whatever is missing is installed when this can be done here (root, apt-get), without
# questions. Otherwise it says which packages are missing, what that does to the tests,
# and how to install them, and leaves the test run to go on; with --require it fails
# instead (CI must not pass without them).
set -euo pipefail

PACKAGES=(chromium chromium-driver slurm-wlm munge python3-qgis)

# A package counts as present when the programs the tests run from it are found, so a
# machine that has them from elsewhere is not asked to install them again.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
present() {
    case "$1" in
        chromium) have chromium || have chromium-browser ;;
        chromium-driver) have chromedriver ;;
        slurm-wlm) have slurmctld && have slurmd && have sbatch && have squeue && have sinfo && have srun ;;
        munge) have munged && have munge ;;
        python3-qgis) /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 ;;
    esac
}

require=no
[ "${1:-}" = --require ] && require=yes

missing=()
for package in "${PACKAGES[@]}"; do
    present "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages for the tests: all present (${PACKAGES[*]})"
    exit 0
fi

echo "system packages for the tests: missing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing them: apt-get install --no-install-recommends ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        exit 0
    fi
    echo "error: apt-get could not install ${missing[*]} (see its messages above)" >&2
    [ "$require" = yes ] && exit 1
else
    if [ "$(id -u)" -ne 0 ]; then
        why="not running as root"
    else
        why="apt-get is not available (not a Debian or Ubuntu system)"
    fi
    echo "not installing them: $why" >&2
    [ "$require" = yes ] && exit 1
fi

# What the test run does without them.
for package in "${missing[@]}"; do
    case "$package" in
        chromium | chromium-driver) browser=missing ;;
        slurm-wlm | munge) slurm=missing ;;
        python3-qgis) qgis=missing ;;
    esac
done
if [ "${browser:-}" = missing ]; then
    echo "  without chromium and chromium-driver, the report test" \
        "(tests/test_workflow.py::test_report_opens_in_chromium_offline) FAILS" >&2
fi
if [ "${slurm:-}" = missing ]; then
    echo "  without slurm-wlm and munge, the SLURM tests (tests/test_slurm.py) are SKIPPED" \
        "(they also need root, to start the daemons)" >&2
fi
if [ "${qgis:-}" = missing ]; then
    echo "  without python3-qgis, the tests that open the products in QGIS" \
        "(tests/report/test_qgis_styles.py, tests/workflow/test_workflow.py) are SKIPPED" >&2
fi
echo "  to install them on Debian or Ubuntu: sudo apt-get install --no-install-recommends" \
    "${missing[*]} (or run \`make test\` as root); elsewhere, the same packages from the" \
    "system's package manager" >&2
exit 0
