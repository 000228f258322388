// Uses the installed headers and library without etcd: options, validate(), and a lock_manager that refuses bad
// options. Exits 0 when all of that behaves as documented.
#include <clusterlock/clusterlock.hpp>
#include <clusterlock/etcd/client.hpp>  // every public header compiles for a user

#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <iostream>
#include <string>

int main() {
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::cerr << "FAILED: " << what << "\n";
      ++failures;
    }
  };

  clusterlock::options good;
  good.endpoints = {"http://127.0.0.1:2379"};
  good.name = "consumer";
  std::string why;
  check(!clusterlock::validate(good, &why), "valid options pass validate(): " + why);

  clusterlock::options bad = good;
  bad.name.clear();
  const auto ec = clusterlock::validate(bad, &why);
  check(ec == clusterlock::errc::invalid_options, "an empty name is invalid_options, got " + ec.message());
  check(why.find("name") != std::string::npos, "the reason names the field: " + why);

  boost::asio::io_context io;
  try {
    clusterlock::lock_manager lock(io.get_executor(), bad);
    check(false, "lock_manager accepted invalid options");
  } catch (const boost::system::system_error& e) {
    check(e.code() == clusterlock::errc::invalid_options, std::string("lock_manager threw ") + e.what());
  }
  try {
    clusterlock::semaphore permits(io, good, 0);
    check(false, "semaphore accepted 0 slots");
  } catch (const boost::system::system_error& e) {
    check(e.code() == clusterlock::errc::invalid_options, std::string("semaphore threw ") + e.what());
    check(std::string(e.what()).find("slots") != std::string::npos, std::string("the reason names slots: ") + e.what());
  }
  {
    clusterlock::semaphore permits(io, good, 3);  // no I/O until start()
    check(permits.slots() == 3 && !permits.have_permit(), "a semaphore of 3 slots, not started, holds no permit");
  }
  {
    clusterlock::rw_lock reader(io, good, clusterlock::rw_lock::mode::read);  // no I/O until start()
    check(reader.access() == clusterlock::rw_lock::mode::read && !reader.have_lock() && reader.holders().empty(),
          "a reader, not started, holds nothing");
    check(clusterlock::to_string(reader.access()) == "read", "rw_lock::mode::read is \"read\"");
  }
  try {
    clusterlock::rw_lock odd(io, good, static_cast<clusterlock::rw_lock::mode>(7));
    check(false, "rw_lock accepted a mode that is neither read nor write");
  } catch (const boost::system::system_error& e) {
    check(e.code() == clusterlock::errc::invalid_options, std::string("rw_lock threw ") + e.what());
  }
  {
    clusterlock::lock_manager lock(io.get_executor(), good);  // no I/O until start()
    check(!lock.have_lock() && lock.fencing_token() == 0, "a new manager holds nothing");
  }
  try {
    clusterlock::etcd::client client(io.get_executor(), clusterlock::etcd::client_config{});
    check(false, "etcd::client accepted a config without endpoints");
  } catch (const boost::system::system_error& e) {
    check(e.code() == clusterlock::errc::invalid_options, std::string("etcd::client threw ") + e.what());
  }
  io.run();

  std::cout << (failures == 0 ? "consumer OK" : "consumer FAILED") << "\n";
  return failures == 0 ? 0 : 1;
}
