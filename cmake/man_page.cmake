# cmake -DIN=docs/cli.md -DOUT=clusterlock.1 -DGO_MD2MAN=... -DVERSION=... -P man_page.cmake
# docs/cli.md with a man page's title line and NAME section in front, through go-md2man.
file(READ "${IN}" text)
string(REGEX REPLACE "^# The `clusterlock` command\n" "" text "${text}")
set(head "% CLUSTERLOCK 1 \"\" \"clusterlock ${VERSION}\" \"User Commands\"\n\n# NAME\n")
string(APPEND head "clusterlock - run a command while holding a cluster-wide lock (etcd), see who holds it, follow it\n\n")
string(APPEND head "# DESCRIPTION\n")
file(WRITE "${OUT}.md" "${head}${text}")
execute_process(COMMAND "${GO_MD2MAN}" -in "${OUT}.md" -out "${OUT}" RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "go-md2man failed on ${OUT}.md")
endif()
# Installed compressed, as Debian's man pages are.
execute_process(COMMAND gzip -9nkf "${OUT}" RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "gzip failed on ${OUT}")
endif()
