"""The teacher role as data: a run distils from a list of named teachers (:class:`TeacherSpec`),
each built by the family that claims its ``model`` (:mod:`mvd.teachers.families`)."""
from .spec import TeacherSpec, parse_teacher_specs

__all__ = ["TeacherSpec", "parse_teacher_specs"]
