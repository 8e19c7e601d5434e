# shellcheck shell=bash
# A SeaweedFS S3 store on 127.0.0.1 for the bench scripts (sourced, not run): one master,
# volume servers, a filer and the S3 gateway with the key pair bench/bench-secret and the
# bucket "bench". The caller sets W (its work directory) and PIDS (the servers started,
# which its EXIT trap kills).

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

weed_bg() { # weed_bg LOG ARGS...: start one SeaweedFS server in the background
  local log=$1
  shift
  (cd "$W" && exec weed "$@" >"$W/$log" 2>&1) &
  PIDS+=($!)
}

# weed_cluster VOLUMES MAX: starts the store with VOLUMES volume servers of MAX volumes
# each and exports the AWS_* variables ironclone reads (path-style addressing is the
# caller's --s3-path-style).
weed_cluster() {
  local n=$1 max=$2 i m mg f fg s3
  m=$(port) mg=$(port) f=$(port) fg=$(port) s3=$(port)
  mkdir -p "$W/m"
  weed_bg master.log master -ip=127.0.0.1 -ip.bind=127.0.0.1 -port="$m" -port.grpc="$mg" -mdir=m -volumeSizeLimitMB=256
  for i in $(seq 1 "$n"); do
    mkdir -p "$W/v$i"
    weed_bg "v$i.log" volume -ip=127.0.0.1 -ip.bind=127.0.0.1 -port="$(port)" -port.grpc="$(port)" \
      -dir="v$i" -max="$max" -mserver="127.0.0.1:$m.$mg"
  done
  weed_bg filer.log filer -ip=127.0.0.1 -ip.bind=127.0.0.1 -port="$f" -port.grpc="$fg" -master="127.0.0.1:$m.$mg"
  cat >"$W/s3.json" <<'JSON'
{"identities":[{"name":"bench","credentials":[{"accessKey":"bench","secretKey":"bench-secret"}],"actions":["Admin","Read","Write","List"]}]}
JSON
  weed_bg s3.log s3 -ip.bind=127.0.0.1 -port="$s3" -port.grpc="$(port)" -port.iceberg=0 -port.lance=0 \
    -filer="127.0.0.1:$f.$fg" -config="$W/s3.json"
  for _ in $(seq 300); do
    echo "s3.bucket.create -name bench" | weed shell -master="127.0.0.1:$m.$mg" 2>/dev/null | grep -q "created bucket" && break
    sleep 0.2
  done
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL="http://127.0.0.1:$s3"
}
