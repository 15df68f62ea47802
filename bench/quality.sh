#!/usr/bin/env bash
# Detection quality on realistic photos (issue 9): generates photos of the real flex with
# `pixal demo --generate-only` (two backlight types; poses, lighting, noise, blur; five defect
# kinds with pixel masks), then for each model runs preprocess -> train -> validate --truth with
# the SHIPPED configs/ (only the component names and model_type changed) and prints, per model,
# size, set and type: image AUROC, pixel AUROC, AUPRO(0.3), the verdicts at the auto threshold
# (defective photos flagged, good photos flagged) and the wall seconds of each stage.
#
#   bash bench/quality.sh
#   SIZES=960x540 SETS=normal MODELS=pixel_stats bash bench/quality.sh     # a quick subset
#
# Environment:
#   SIZES   photo sizes               (default "960x540 1920x1080")
#   SETS    normal: contrast 1, 60 training photos per type;
#           subtle: contrast 0.35, 20 training photos per type; both 20 good + 20 defective
#           validation photos per type (default "normal subtle")
#   MODELS  model_type values         (default "pixel_stats autoencoder")
#   SEED    generator seed            (default 7)
#   WORK    work folder; kept (and generated data reused) when given, else a temp folder that
#           is removed at the end
#   PIXAL   a pixal binary to use instead of building one (release)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${SIZES:-960x540 1920x1080}"
SETS="${SETS:-normal subtle}"
MODELS="${MODELS:-pixel_stats autoencoder}"
SEED="${SEED:-7}"

if [[ -n "${PIXAL:-}" ]]; then
  bin="$(realpath "$PIXAL")"
else
  (cd "$repo" && cargo build --release --quiet)
  bin="$(realpath "${CARGO_TARGET_DIR:-$repo/target}/release/pixal")"
fi
if [[ -n "${WORK:-}" ]]; then
  work="$(mkdir -p "$WORK" && cd "$WORK" && pwd)"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
results="$work/results.tsv"
: > "$results"

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

for size in $SIZES; do
  for set in $SETS; do
    case "$set" in
      normal) gen_args=(--train 60) ;;
      subtle) gen_args=(--subtle --train 20) ;;
      *) echo "quality.sh: unknown set '$set' (normal or subtle)" >&2; exit 2 ;;
    esac
    data="$work/data/$size-$set"
    gen_s="reused"
    if [[ ! -f "$data/.complete" ]]; then
      rm -rf "$data"
      t0=$(now)
      "$bin" -q demo --generate-only --size "$size" "${gen_args[@]}" --good 20 --defective 20 \
        --seed "$SEED" -o "$data"
      gen_s=$(secs "$t0" "$(now)")
      touch "$data/.complete"
    fi
    echo "quality.sh: data $size $set in $data (generation ${gen_s} s)" >&2
    for model in $MODELS; do
      run="$work/run/$size-$set-$model"
      rm -rf "$run"
      mkdir -p "$run/configs"
      # The shipped configs; only the component names and the model type change.
      sed -e 's/Data_set_R0_Triplet_Data_F1_2ps_6var/quality_model/' \
          -e 's/Data_set_R0_Triplet_Data_F1_d1_2ps_6var/quality_validate/' \
          "$repo/configs/paths.yaml" > "$run/configs/paths.yaml"
      sed -e "s/^\(  model_type: \)\"[a-z_]*\"/\1\"$model\"/" \
          "$repo/configs/parameters.yaml" > "$run/configs/parameters.yaml"
      if ! grep -q "^  model_type: \"$model\"" "$run/configs/parameters.yaml" \
        || ! grep -q 'component: "quality_validate"' "$run/configs/paths.yaml"; then
        echo "quality.sh: could not set model_type $model / component names in the shipped configs" >&2
        exit 1
      fi
      declare -A took=() rcs=()
      stage() { # name, pixal args...
        local name=$1 t0 rc=0
        shift
        t0=$(now)
        (cd "$run" && "$bin" -q --config configs "$@") >"$run/$name.log" 2>&1 || rc=$?
        took[$name]=$(secs "$t0" "$(now)")
        rcs[$name]=$rc
        echo "quality.sh: $size $set $model: $name ${took[$name]} s (exit $rc)" >&2
        if [[ $rc -ne 0 ]]; then tail -n 5 "$run/$name.log" | sed 's/^/    /' >&2; fi
      }
      stage preprocess preprocess -i "$data/data/train"
      stage train train
      stage validate validate -i "$data/data/validate" --truth "$data/data/truth"
      python3 - "$run/validate/quality_validate" "$data/data/validate" "$model" "$size" "$set" \
        "${took[preprocess]}" "${took[train]}" "${took[validate]}" \
        "${rcs[preprocess]}/${rcs[train]}/${rcs[validate]}" >> "$results" <<'PY'
import json, os, sys
root, vdata, model, size, sset, tp, tt, tv, rcs = sys.argv[1:10]
for ty in sorted(os.listdir(vdata)):
    path = os.path.join(root, ty, "summary.json")
    row = [model, size, sset, ty]
    try:
        s = json.load(open(path))
    except (OSError, ValueError):
        print("\t".join(row + ["n/a"] * 5 + [tp, tt, tv, rcs]))
        continue
    m = s.get("metrics") or {}
    f = lambda k: "n/a" if m.get(k) is None else f"{m[k]:.4f}"
    bad = good = bad_flagged = good_flagged = 0
    for im in s.get("images", []):
        truth = im.get("truth")
        if truth is None:  # no ground truth recorded: the file name says good_NNN or the defect
            truth = not os.path.basename(im["photo"]).startswith("good_")
        flagged = im.get("verdict") == "anomalous"
        if truth:
            bad += 1
            bad_flagged += flagged
        else:
            good += 1
            good_flagged += flagged
    row += [f("image_auroc"), f("pixel_auroc"), f("aupro_0_3"),
            f"{bad_flagged}/{bad}", f"{good_flagged}/{good}", tp, tt, tv, rcs]
    print("\t".join(row))
PY
      unset took rcs
    done
  done
done

python3 - "$results" <<'PY'
import sys
head = ["model", "size", "set", "type", "img_AUROC", "px_AUROC", "AUPRO0.3",
        "defect_flagged", "good_flagged", "prep_s", "train_s", "valid_s", "exit"]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).ljust(w[i]) if i < 4 else str(c).rjust(w[i]) for i, c in enumerate(r)))
PY
echo "quality.sh: targets: image AUROC >= 0.99, pixel AUROC >= 0.995, AUPRO(0.3) >= 0.97, >= 90 % of defective and <= 5 % of good photos flagged" >&2
