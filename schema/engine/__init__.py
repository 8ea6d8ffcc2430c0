"""schema/engine"""
