# Sourced by scripts/support-table and scripts/figures, which write README.rst's
# generated blocks.
#
# readme_block NAME FILE: the lines between `.. NAME: begin` and `.. NAME: end` in
# README.rst become FILE's, with a blank line before and after them.
readme_block() {
    local name=$1 file=$2 new
    grep -qx ".. $name: begin" README.rst && grep -qx ".. $name: end" README.rst \
        || { echo "$name: README.rst has no '.. $name: begin'/'end' lines" >&2; return 1; }
    new="$(mktemp)"
    awk -v begin=".. $name: begin" -v end=".. $name: end" -v file="$file" '
        $0 == end { skipping = 0 }
        !skipping { print }
        $0 == begin {
            print ""
            while ((getline line < file) > 0) print line
            print ""
            skipping = 1
        }
    ' README.rst >"$new"
    mv "$new" README.rst
}
