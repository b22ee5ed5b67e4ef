# g++: compiles a C++ program with threads and std containers (driver, cc1plus, as, collect2,
# ld), which is then run; its output and checksum must match the bare build.
expect_processes='>= 5'
prepare() { cp "$inputs/containers.cc" .; }
command=(g++ -O1 -std=c++20 -pthread -o containers containers.cc)
post() { ./containers; echo "containers exit $?"; sha256sum containers; }
expect_in_stdout='containers exit 0'
timeout_s=120
