# Every third-party dependency, found once, exposed as an imported target.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG)   # Asio and Beast are header-only
find_package(OpenSSL REQUIRED)
find_package(CURL REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares)
pkg_check_modules(LDNS REQUIRED IMPORTED_TARGET ldns)
if(LPK_TESTS)
  find_package(GTest REQUIRED)
endif()

# Common settings for every lpk library and executable.
add_library(lpk_common INTERFACE)
target_include_directories(lpk_common INTERFACE ${PROJECT_SOURCE_DIR})
target_link_libraries(lpk_common INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(lpk_common INTERFACE SPDLOG_FMT_EXTERNAL)
