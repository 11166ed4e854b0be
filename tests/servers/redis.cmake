# Redis for the tests (included by tests/servers/CMakeLists.txt).
#
# Fixture "redis": a throwaway redis-server on 127.0.0.1:CONCERT_TEST_REDIS_PORT
# with its data and unix socket in the build tree (redis.sh), started before
# the tests that need it and stopped after. CONCERT_TEST_REDIS_PORT + 1 is the
# spare port of a server that tests/integration/redis restarts on its own.
# The port defaults to one derived from the build directory, so two build
# trees on one machine do not collide.
#
# Registers: the queue conformance suite against Redis (over TCP and over the
# unix socket) and tests/integration/redis.

if(CONCERT_WITH_REDIS)
  string(MD5 _redis_hash "${PROJECT_BINARY_DIR}")
  string(SUBSTRING "${_redis_hash}" 0 4 _redis_hash)
  # Below the ephemeral range (32768+), where a client socket could hold it.
  math(EXPR _redis_port "20000 + (0x${_redis_hash} % 6000) * 2")
  set(CONCERT_TEST_REDIS_PORT ${_redis_port} CACHE STRING
      "Port of the test redis-server (the next port is used too)")
  math(EXPR _redis_spare_port "${CONCERT_TEST_REDIS_PORT} + 1")
  set(_redis_script ${CMAKE_CURRENT_LIST_DIR}/redis.sh)
  set(_redis_dir ${PROJECT_BINARY_DIR}/tests/redis-server)
  # Internal cache entries: read by the deferred registration below, which
  # runs in the scope of tests/.
  set(CONCERT_TEST_REDIS_URI "redis://127.0.0.1:${CONCERT_TEST_REDIS_PORT}/0" CACHE INTERNAL "")
  set(CONCERT_TEST_REDIS_SOCKET_URI "" CACHE INTERNAL "")
  # redis.sh makes the socket only when its path fits in sun_path.
  string(LENGTH "${_redis_dir}" _redis_dir_length)
  if(_redis_dir_length LESS 96)
    # redis:///absolute/path/to.sock
    set(CONCERT_TEST_REDIS_SOCKET_URI "redis://${_redis_dir}/redis.sock?db=1" CACHE INTERNAL "")
  endif()

  add_test(NAME servers.redis.start
    COMMAND sh ${_redis_script} start ${_redis_dir} ${CONCERT_TEST_REDIS_PORT})
  add_test(NAME servers.redis.stop
    COMMAND sh ${_redis_script} stop ${_redis_dir} ${CONCERT_TEST_REDIS_PORT})
  set_tests_properties(servers.redis.start PROPERTIES FIXTURES_SETUP redis
    LABELS "redis;threaded" TIMEOUT 60)
  set_tests_properties(servers.redis.stop PROPERTIES FIXTURES_CLEANUP redis
    LABELS "redis;threaded" TIMEOUT 60)

  # Read by tests/integration/redis (see redis_test.h there).
  set(CONCERT_TEST_REDIS_ENV
    "CONCERT_TEST_REDIS_PORT=${CONCERT_TEST_REDIS_PORT}"
    "CONCERT_TEST_REDIS_SPARE_PORT=${_redis_spare_port}"
    "CONCERT_TEST_REDIS_SERVER=${_redis_script}"
    "CONCERT_TEST_REDIS_SCRATCH=${PROJECT_BINARY_DIR}/tests/redis-scratch")
  set(CONCERT_TEST_REDIS_FIXTURES redis)
  if(CONCERT_WITH_POSTGRES AND CONCERT_TEST_PG_URI)
    # The hot-seat test puts its store on the PostgreSQL fixture.
    list(APPEND CONCERT_TEST_REDIS_ENV
      "CONCERT_TEST_PG_STORE=${CONCERT_TEST_PG_URI}?schema=redis_hot_seat")
    list(APPEND CONCERT_TEST_REDIS_FIXTURES postgres)
  endif()
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/integration/redis
                   ${PROJECT_BINARY_DIR}/tests/integration/redis)

  # The queue conformance suite, unchanged, against Redis; registered once
  # tests/ has defined the conformance programs.
  function(concert_redis_conformance)
    if(NOT TARGET conformance_test_queue)
      return()
    endif()
    set(variants tcp)
    if(CONCERT_TEST_REDIS_SOCKET_URI)
      list(APPEND variants unix)
    endif()
    foreach(variant ${variants})
      if(variant STREQUAL "tcp")
        set(uri ${CONCERT_TEST_REDIS_URI})
      else()
        set(uri ${CONCERT_TEST_REDIS_SOCKET_URI})
      endif()
      add_test(NAME conformance.test_queue.redis_${variant} COMMAND conformance_test_queue)
      set_tests_properties(conformance.test_queue.redis_${variant} PROPERTIES
        ENVIRONMENT "CONCERT_TEST_QUEUE=${uri}"
        FIXTURES_REQUIRED redis LABELS "conformance;redis" TIMEOUT 120)
    endforeach()
  endfunction()
  cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR}/tests CALL concert_redis_conformance)
endif()
