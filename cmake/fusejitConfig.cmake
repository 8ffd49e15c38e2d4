include(${CMAKE_CURRENT_LIST_DIR}/fusejitTargets.cmake)
