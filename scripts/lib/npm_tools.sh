# Installs the pinned npm tools of a folder (its package.json and package-lock.json) when they are
# missing or older than the lock file: npm writes node_modules/.package-lock.json on every
# install, so one older than the lock means outdated.
wachat_npm_tools() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
}
