"""Puzzles for HRM: Sudoku, mazes, ARC; official dataset layout, verification, tools."""
