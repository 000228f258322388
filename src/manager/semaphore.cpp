// The semaphore's public face: a lock_manager whose machine counts N permits (recipe::admission::semaphore).

#include <clusterlock/semaphore.hpp>

#include "recipe/admission.hpp"
#include "recipe/slots_value.hpp"

#include <boost/system/system_error.hpp>

namespace clusterlock {

std::size_t semaphore::checked_slots(std::size_t slots) {
  if (slots == 0 || slots > recipe::max_slots)
    throw boost::system::system_error(make_error_code(errc::invalid_options),
                                      "slots: " + std::to_string(slots) + " is not between 1 and " +
                                          std::to_string(recipe::max_slots));
  return slots;
}

semaphore::semaphore(executor_type ex, options opts, std::size_t slots)
    : manager_face(std::move(ex), std::move(opts), recipe::admission::semaphore(checked_slots(slots))), slots_(slots) {}

semaphore::semaphore(session& s, options opts, std::size_t slots)
    : manager_face(s, std::move(opts), recipe::admission::semaphore(checked_slots(slots))), slots_(slots) {}

std::vector<lock_entry> semaphore::holders() const {
  auto q = impl_.queue();
  if (q.size() > slots_) q.resize(slots_);
  return q;
}

}  // namespace clusterlock
