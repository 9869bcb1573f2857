# Sourced by the gpu/ training scripts on the GPU machine: poselib from .gpu/ when missing, this checkout on
# PYTHONPATH, $workers data-loading processes, and bring_back RUN OUT to copy a run's files to OUT.
if compgen -G ".gpu/*.whl" > /dev/null && ! python3 -c "import poselib" 2> /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
workers=$(($(nproc) > 2 ? $(nproc) - 2 : 1))

bring_back() {
  for file in best.pt checkpoint.pt log.jsonl config.json; do
    [ -f "$1/$file" ] && cp "$1/$file" "$2/"
  done
  ls -la "$2"
}
