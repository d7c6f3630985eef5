# shellcheck shell=bash
# Certificates, service-account keys and kubeconfigs for the harness (sourced by up.sh; needs lib.sh).
# Regenerated only when missing or when the host address in the apiserver certificate changed.

_sign() { # name subject [extensions [ca]]  -> $PKI/name.{key,crt} signed by $PKI/ca (default) or $PKI/<ca>
  local name=$1 subj=$2 ext=${3:-} ca=${4:-ca}
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$ext" > "$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -days 3650 \
    -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

_kubeconfig() { # file user cert-name server
  local file=$1 user=$2 cert=$3 server=$4
  write_if_changed "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tfscore
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 < "$PKI/$cert.key")
contexts:
- name: tfscore
  context: {cluster: tfscore, user: $user}
current-context: tfscore
KC
  chmod 600 "$file"
}

ensure_pki() {
  local hip=$1
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ -f $PKI/ca.crt && -f $PKI/.host-ip && $(cat "$PKI/.host-ip") == "$hip" && -f $PKI/front-proxy-client.crt ]]; then
    _kubeconfigs
    return 0
  fi
  log "generating certificates in $PKI (host address $hip)"
  if [[ ! -f $PKI/ca.crt ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=tfscore-cluster-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  if [[ ! -f $PKI/sa.key ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  if [[ ! -f $PKI/front-proxy-ca.crt ]]; then   # aggregation layer (requestheader) CA, separate from the cluster CA
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/front-proxy-ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/front-proxy-ca.key" -subj "/CN=tfscore-front-proxy-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/front-proxy-ca.crt" 2>/dev/null
  fi
  local server_san="subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  server_san+=",DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP,IP:$hip"
  _sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
$server_san"
  _sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  _sign admin "/O=system:masters/CN=tfscore-admin" "extendedKeyUsage=clientAuth"
  _sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  _sign scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
  _sign kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  _sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  _sign kubelet "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth
subjectAltName=DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$hip"
  _sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth" front-proxy-ca
  echo "$hip" > "$PKI/.host-ip"
  _kubeconfigs
}

# Written on every start, not only with new certificates: a state dir kept from before a port change must not point
# its clients at the old API server port.
_kubeconfigs() {
  local local_server=https://127.0.0.1:$APISERVER_PORT
  _kubeconfig "$KUBECONFIG_FILE" tfscore-admin admin "$local_server"
  _kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager controller-manager "$local_server"
  _kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler scheduler "$local_server"
  _kubeconfig "$STATE/kube-proxy.kubeconfig" system:kube-proxy kube-proxy "$local_server"
  _kubeconfig "$STATE/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet-client "$local_server"
}

# A serving certificate for a harness add-on (e.g. Kueue's webhooks, reached by the apiserver at https://127.0.0.1:PORT),
# signed by the cluster CA. Re-signed only when missing, when its SANs change, or when it no longer verifies against the
# current CA (a purged state dir has a new CA).
ensure_serving_cert() { # name common-name subjectAltName-list (e.g. DNS:localhost,IP:127.0.0.1)
  local name=$1 cn=$2 san=$3
  [[ -f $PKI/ca.crt && -f $PKI/ca.key ]] || die "no cluster CA in $PKI (start the cluster with up.sh first)"
  if [[ -f $PKI/$name.crt && -f $PKI/$name.key && $(cat "$PKI/.$name.san" 2>/dev/null) == "$san" ]] \
    && openssl verify -CAfile "$PKI/ca.crt" "$PKI/$name.crt" >/dev/null 2>&1; then
    return 0
  fi
  log "signing serving certificate $PKI/$name.crt ($san)"
  _sign "$name" "/CN=$cn" "extendedKeyUsage=serverAuth
subjectAltName=$san"
  echo "$san" > "$PKI/.$name.san"
}
