// The one translation unit that instantiates Boost.Asio and Boost.Beast
// (separate compilation keeps their implementation out of every other TU).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
