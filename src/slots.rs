//! Reading `__slots__` members of Python classes from Rust.
//!
//! A `__slots__` member is an object pointer at a fixed offset in every
//! instance of its class (and of subclasses, which only append). Where a
//! Rust fast path reads an attribute of a Python object on every message,
//! rloop's class declares it as a slot and the path reads the pointer at
//! the offset its member descriptor gives: no type or dict lookup, while
//! Python code still sees a plain attribute (and CPython's own specialised
//! attribute access reads slots as fast as dict entries).

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Where instances of `cls` keep their `__slots__` member `name`: an
/// object slot, so a pointer that is NULL while the attribute is unset.
pub fn object_slot(cls: &Bound<'_, PyType>, name: &str) -> PyResult<isize> {
    let py = cls.py();
    let descr = cls.getattr(intern!(py, "__dict__"))?.get_item(name)?;
    // SAFETY: reading the type of a live object; the static type object is
    // only compared by address.
    let is_member =
        unsafe { ffi::Py_TYPE(descr.as_ptr()) == std::ptr::addr_of_mut!(ffi::PyMemberDescr_Type) };
    if !is_member {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a __slots__ member"
        )));
    }
    // SAFETY: `descr` is a live member descriptor (checked above), whose
    // definition lives as long as its class.
    let (offset, kind) = unsafe {
        let member = (*descr.as_ptr().cast::<ffi::PyMemberDescrObject>()).d_member;
        ((*member).offset, (*member).type_code)
    };
    if kind != ffi::Py_T_OBJECT_EX || offset <= 0 {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an object slot"
        )));
    }
    Ok(offset)
}

/// The object in `obj`'s slot at `offset`, if set.
///
/// # Safety
/// `obj` is a live instance of a class (or subclass) for which
/// `object_slot` gave `offset`.
pub unsafe fn read<'py>(
    py: Python<'py>,
    obj: *mut ffi::PyObject,
    offset: isize,
) -> Option<Bound<'py, PyAny>> {
    // SAFETY: as the caller promises, an object pointer (NULL while unset)
    // lies at `offset` in `obj`.
    let value = unsafe { *obj.cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>() };
    // SAFETY: a live object the instance holds; a new reference is taken.
    (!value.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, value) })
}
