# Precompiled headers: each library parses the heavy third-party headers (Asio, Beast, nlohmann
# json, spdlog, gtest) once instead of once per translation unit, which is most of the front-end
# time of a typical lpk file. Only third-party headers go in: lpk's own headers change too often.
#
#   lpk_precompile(<target> <set>...)   precompiles the headers of the named sets below
#   lpk_precompile_reuse(<target> <from>)  a one-file target uses <from>'s (same flags)
#
# -DLPK_PCH=OFF builds without them, e.g. to check that every file includes what it uses.
option(LPK_PCH "Precompile the heavy third-party headers, once per library" ON)

set(lpk_pch_std <algorithm> <chrono> <cstdint> <functional> <map> <memory> <optional> <span>
    <string> <string_view> <utility> <vector>)
# The Asio core lpk's headers use; <boost/asio.hpp> whole costs half again as much to parse.
set(lpk_pch_asio <boost/asio/any_io_executor.hpp> <boost/asio/as_tuple.hpp>
    <boost/asio/awaitable.hpp> <boost/asio/buffer.hpp> <boost/asio/co_spawn.hpp>
    <boost/asio/detached.hpp> <boost/asio/io_context.hpp> <boost/asio/ip/address.hpp>
    <boost/asio/ip/tcp.hpp> <boost/asio/ip/udp.hpp> <boost/asio/steady_timer.hpp>
    <boost/asio/use_awaitable.hpp> <boost/system/error_code.hpp> <boost/system/result.hpp>)
set(lpk_pch_asio_ops <boost/asio/experimental/awaitable_operators.hpp>)
set(lpk_pch_asio_all <boost/asio.hpp>)
set(lpk_pch_beast <boost/asio.hpp> <boost/asio/ssl.hpp> <boost/beast/core.hpp>
    <boost/beast/http.hpp> <boost/beast/ssl.hpp>)
set(lpk_pch_json <nlohmann/json.hpp>)
set(lpk_pch_log <spdlog/spdlog.h> <fmt/format.h>)
set(lpk_pch_gtest <gtest/gtest.h>)

function(lpk_precompile target)
  if(NOT LPK_PCH)
    return()
  endif()
  set(headers ${lpk_pch_std})
  foreach(set IN LISTS ARGN)
    if(NOT DEFINED lpk_pch_${set})
      message(FATAL_ERROR "lpk_precompile: no header set '${set}'")
    endif()
    list(APPEND headers ${lpk_pch_${set}})
  endforeach()
  target_precompile_headers(${target} PRIVATE ${headers})
endfunction()

# A target of one or two files would pay more for its own precompiled header than it saves; it
# can use the library's when it compiles with the same flags (GCC warns with -Winvalid-pch and
# parses the headers itself if not).
function(lpk_precompile_reuse target from)
  if(LPK_PCH)
    target_precompile_headers(${target} REUSE_FROM ${from})
  endif()
endfunction()

if(LPK_PCH AND CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Clang stamps a precompiled header with its inputs' mtimes, which ccache cannot hash.
  add_compile_options("SHELL:-Xclang -fno-pch-timestamp")
endif()
