// The read-write lock's public face: a lock_manager whose machine admits readers and writers
// (recipe::admission::reader and writer).

#include <clusterlock/rw_lock.hpp>

#include "manager/manager_state.hpp"
#include "recipe/admission.hpp"

#include <boost/system/system_error.hpp>

namespace clusterlock {

namespace {

recipe::admission rule_of(rw_lock::mode access) {
  return access == rw_lock::mode::read ? recipe::admission::reader() : recipe::admission::writer();
}

}  // namespace

rw_lock::mode rw_lock::checked_mode(mode access) {
  if (access != mode::read && access != mode::write)
    throw boost::system::system_error(make_error_code(errc::invalid_options),
                                      "mode: " + std::to_string(static_cast<int>(access)) +
                                          " is neither rw_lock::mode::read nor rw_lock::mode::write");
  return access;
}

rw_lock::rw_lock(executor_type ex, options opts, mode access)
    : manager_face(std::move(ex), std::move(opts), rule_of(checked_mode(access))), mode_(access) {}

rw_lock::rw_lock(session& s, options opts, mode access)
    : manager_face(s, std::move(opts), rule_of(checked_mode(access))), mode_(access) {}

std::vector<lock_entry> rw_lock::holders() const { return impl_.state_->rw_holders(); }

std::string_view to_string(rw_lock::mode access) noexcept {
  return access == rw_lock::mode::read ? "read" : "write";
}

}  // namespace clusterlock
